"""A training time budget: how many epochs a fit can afford.

Plain Python, no torch and no scikit-learn. A fit learns its pace only by
running; after every epoch the budget says how many epochs the time left
affords at the pace so far, and the fit re-sizes its plan (and its
learning-rate schedule) to match: fewer epochs when it runs slower than
planned, more when faster. ``max_iter`` stays the cap: the budget never plans
beyond it.
"""

import math
import time

from skae._warnings import warn


class TimeBudget:
    """Sizes a run of epochs to end within `max_time` seconds of `started`.

    Parameters
    ----------
    max_time : float
        Seconds the whole call may take, counted from `started`.
    started : float
        ``time.perf_counter()`` when the call began (validation and the PCA
        start count against the budget too).
    """

    def __init__(self, max_time, started):
        self.max_time = max_time
        self.deadline = started + max_time
        self.started = started
        self.training_started = None
        self.first_epoch = None
        self.cap = None
        self.warned = False

    def start(self, n_iter, cap):
        """Mark the start of training: `n_iter` epochs already run, `cap` the last."""
        self.training_started = time.perf_counter()
        self.first_epoch = n_iter
        self.cap = cap

    def last_epoch(self, n_iter):
        """Return the last epoch the time left affords, at most the cap.

        `n_iter` epochs have run; the pace is the mean time per epoch of this
        run, so far, including the work between epochs. The answer is never
        below `n_iter`: an epoch that has run is kept.
        """
        now = time.perf_counter()
        run = n_iter - self.first_epoch
        if run <= 0:
            return self.cap
        pace = (now - self.training_started) / run
        more = (self.deadline - now) / pace if pace > 0 else math.inf
        if more >= self.cap - n_iter:
            # Also where a huge budget makes `more` too large for an int.
            return self.cap
        affordable = n_iter + max(0, math.floor(more))
        if run == 1 and now > self.deadline and not self.warned:
            self.warned = True
            # No figure in the text: a search's runs each get a share of the
            # user's max_time, which is not the number the user gave, and one
            # text is shown once however many runs it comes from.
            warn(
                "max_time is shorter than the start and one epoch of training; "
                "trained one epoch. Raise max_time, or lower max_iter or the "
                "model's size."
            )
        return affordable


def check_max_time(max_time):
    """Return `max_time` as a float, or None; refuse what no budget can be."""
    if max_time is None:
        return None
    if isinstance(max_time, bool):
        raise ValueError(
            f"max_time={max_time!r} must be a number of seconds, not a bool."
        )
    try:
        value = float(max_time)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"max_time={max_time!r} must be a finite number of seconds > 0, or "
            "None for no time budget."
        )
    return value


# The least time a run of a search gets (seconds): it then trains one epoch.
MIN_SHARE = 1e-3


def share_of_time_left(deadline, now, runs_left):
    """Return a run's budget: the time left until `deadline`, split `runs_left` ways.

    For searches that run the trainer several times under one ``max_time``
    (the widths of a width search, the folds of a cross-validation); never
    less than `MIN_SHARE`, so that every run trains one epoch.
    """
    return max(max(deadline - now, 0.0) / runs_left, MIN_SHARE)
