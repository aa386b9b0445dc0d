"""The width search: n_components as a fraction of variance, as in PCA.

`search_width` trains at the smallest code width whose reconstruction explains
a fraction of the variance on the rows the fit measures (the early-stopping
rows it holds out, else the training rows). PCA fitted on the training rows
gives an upper bound for free: the autoencoder starts as PCA, and early
stopping keeps that start when training does not beat it. Each width tried is
trained as `fit` trains from scratch (`skae._crossval.fit_new`: one trainer
run, or a cross-validated one on small data), so it can stop early; the chosen
width's state is exactly what
``MLPAutoencoder(n_components=n_components_, random_state=seed).fit(X)`` trains.
"""

import math
import time
from numbers import Integral, Real

import numpy as np

from skae._budget import check_max_time, share_of_time_left
from skae._crossval import N_FOLDS, fit_new
from skae._crossval import applies as cross_validation_applies
from skae._torch_utils import shared_seed
from skae._validation import check_validation_size, early_stopping_on
from skae._variance import (
    held_out_rows,
    measured_explained_variance,
    row_sums,
)
from skae._warnings import warn

# The fewest rows a width's explained variance can be measured on: one row is
# its own mean, so every width would explain 0 (or all) of its variance.
MIN_MEASURED_ROWS = 2


def is_fraction(n_components):
    """Whether n_components asks for a fraction of the variance (a float)."""
    return isinstance(n_components, Real) and not isinstance(n_components, Integral)


def check_known_width(estimator, method):
    """Refuse a fraction of variance where the width must be known beforehand."""
    if is_fraction(estimator.n_components):
        raise ValueError(
            f"{method} needs the code's width before it trains, but "
            f"n_components={estimator.n_components!r} is a fraction of the "
            "variance, which only fit can search widths for: the width must be "
            "known before streaming. Set n_components to an int (e.g. the "
            "n_components_ of a fit on a first chunk)."
        )


def check_measurable(params, n_samples):
    """Refuse a search whose widths would be measured on too few rows to decide."""
    measured, where = n_samples, "the training rows"
    if early_stopping_on(params, n_samples):
        measured = check_validation_size(params, n_samples)
        where = f"the rows early stopping holds out (of {n_samples})"
    if measured < MIN_MEASURED_ROWS:
        least = math.floor((MIN_MEASURED_ROWS - 1) / params.validation_fraction)
        raise ValueError(
            f"n_components={params.n_components!r} chooses the width by the "
            f"variance explained on {where}: {measured} row, too few to decide "
            "between widths (every width explains as much of one row). Fit on "
            f"at least {least + 1} rows, set early_stopping=False, or set "
            "n_components to an int."
        )


def search_width(config, rows, callbacks, started):
    """Find the smallest width explaining ``config.n_components`` of the variance.

    Checks what the search needs of `rows` and trains every width
    it tries, reporting to `callbacks`. Returns (the chosen width's trained
    state, its explained variance, the record of every width tried): the
    caller publishes them. A ``max_time`` is shared among the widths: each run
    gets the time left divided by the runs the bracket may still need.
    """
    fraction = float(config.n_components)
    if rows.missing or rows.sparse:
        raise ValueError(
            f"n_components={config.n_components!r} searches the width by the "
            "variance of complete, dense rows, but X is "
            f"{'sparse' if rows.sparse else 'missing entries (NaN)'}"
            ": set n_components to an int."
        )
    X, weights = rows.X, rows.weights()
    if _total_variance(X, weights) == 0:
        raise ValueError(
            f"n_components={config.n_components!r} asks for a fraction of X's "
            f"variance, but X has none (n_samples={X.shape[0]}, every column "
            "constant): set n_components to an int."
        )
    check_measurable(config, X.shape[0])
    before = callbacks.save()
    try:
        return _search(config, rows, callbacks, started, fraction)
    except BaseException:
        # Each width's run publishes its state: a search that fails or is
        # interrupted at any width leaves the caller as it was before it.
        callbacks.restore(before)
        raise


def _search(config, rows, callbacks, started, fraction):
    """Bisect the widths (see `search_width`); return what it returns."""
    X, weights = rows.X, rows.weights()
    search = _WidthSearch(config, rows, callbacks, started)

    # The first width halves PCA's bound on all the rows; once a fit has shown
    # which rows it holds out, the bound is PCA's width on those rows.
    # No width beyond the rows' rank explains more than the rank does.
    n_features = X.shape[1]
    widest = min(n_features, X.shape[0])
    lo, hi = (
        0,
        min(_width_for(_pca_explained(X, weights, X, weights), fraction), widest),
    )
    first = search.fit(max(1, (lo + hi + 1) // 2), _fits_left(lo, hi))
    held_out = search.held_out(first)
    if held_out is None:
        pca_curve = _pca_explained(X, weights, X, weights)
    else:
        widest = min(n_features, X.shape[0] - len(held_out))
        keep = np.ones(X.shape[0], dtype=bool)
        keep[held_out] = False
        pca_curve = _pca_explained(
            X[keep],
            None if weights is None else weights[keep],
            X[held_out],
            None if weights is None else weights[held_out],
        )
    # Cross-validated widths are judged out of fold, where PCA too explains
    # less than on the rows it was fitted on: its in-sample width is no bound.
    cross_validated = held_out is None and cross_validation_applies(config, rows, None)
    if cross_validated:
        # No wider than the rows each fold trains on.
        widest = min(n_features, X.shape[0] - math.ceil(X.shape[0] / N_FOLDS))
    hi = widest if cross_validated else min(_width_for(pca_curve, fraction), widest)
    if first.passed(fraction):
        hi = min(hi, first.n_components)
    else:
        lo = first.n_components
        hi = max(hi, min(lo + 1, widest))
    hi = min(hi, widest)
    halve_next = False
    while hi - lo > 1:
        width = (lo + hi) // 2
        if not halve_next:
            width = _predicted_width(search.last, pca_curve, fraction, lo, hi)
        before = hi - lo
        candidate = search.fit(width, _fits_left(lo, hi))
        if candidate.passed(fraction):
            hi = width
        else:
            lo = width
        # Safeguarded interpolation: a guess that fails to halve the bracket is
        # followed by a plain bisection step.
        halve_next = (hi - lo) * 2 > before
    chosen = search.tried.get(hi) or search.fit(hi, 1)
    if not chosen.passed(fraction):
        if cross_validated:
            where, bound = "out-of-fold", "the rows' rank"
        else:
            where = "held-out" if search.held_out(chosen) is not None else "training"
            bound = "PCA's width for it"
        warn(
            f"n_components={config.n_components!r} was not reached: no width "
            f"up to {hi} ({bound}) explained that fraction of the "
            f"variance of the {where} rows. The widest tried, n_components_="
            f"{hi}, explains {chosen.explained_variance:.4f} "
            "(explained_variance_score_). Train longer (max_iter), start from "
            "PCA (init='pca'), or set n_components to an int."
        )
    return chosen.state, chosen.explained_variance, search.record


class _Candidate:
    """One width tried: its trained state and explained variance."""

    def __init__(self, n_components, state, explained_variance):
        self.n_components = n_components
        self.state = state
        self.explained_variance = explained_variance

    def passed(self, fraction):
        return self.explained_variance >= fraction


class _WidthSearch:
    """Runs the trainer at given widths, keeping every result."""

    def __init__(self, config, rows, callbacks, started):
        self.config = config
        self.rows = rows
        self.callbacks = callbacks
        self.deadline = None
        if config.max_time is not None:
            self.deadline = started + check_max_time(config.max_time)
        # One seed for every width, so the chosen width's model is the fit
        # of that width with this seed.
        self.seed = shared_seed(config.random_state)
        self.tried = {}
        self.record = []
        self.last = None

    def held_out(self, candidate):
        """Return the rows the run of `candidate` held out, or None."""
        return held_out_rows(candidate.state, self.config, self.rows.n_samples)

    def fit(self, n_components, fits_left):
        """Train the width `n_components` (once) and return its candidate.

        Under a time budget, this run gets 1 / `fits_left` of the time left.
        """
        if n_components in self.tried:
            self.last = self.tried[n_components]
            return self.last
        start = time.perf_counter()
        max_time = None
        if self.deadline is not None:
            # A search over time still trains each width (one epoch at least).
            max_time = share_of_time_left(self.deadline, start, fits_left)
        config = self.config.at_width(
            n_components, random_state=self.seed, max_time=max_time
        )
        try:
            state = fit_new(config, self.rows, self.callbacks, start, "raise")
        except KeyboardInterrupt:
            warn(
                f"Width search interrupted by user while fitting n_components="
                f"{n_components}: this MLPAutoencoder is left as it was before "
                "fit, and there is nothing to resume. Call fit again to search."
            )
            raise
        explained = measured_explained_variance(
            state, config, self.rows.X, self.rows.weights(), complete=True
        )
        seconds = time.perf_counter() - start
        self.record.append(
            {
                "n_components": int(n_components),
                "explained_variance": float(explained),
                "n_iter": int(state.history.n_iter),
                "seconds": seconds,
            }
        )
        if self.config.verbose:
            print(
                f"n_components={n_components}: explained variance "
                f"{explained:.4f} ({seconds:.1f} s)"
            )
        candidate = _Candidate(int(n_components), state, float(explained))
        self.tried[n_components] = self.last = candidate
        return candidate


def _fits_left(lo, hi):
    """Fits a bisection of the bracket (lo, hi] may still need, the last included."""
    return max(1, math.ceil(math.log2(max(hi - lo, 1)))) + 1


def _total_variance(X, weights):
    """Weighted sum of squared deviations from the column means."""
    mean = np.average(X, axis=0, weights=weights)
    return row_sums(np.square(X - mean, dtype=np.float64), weights)


def _pca_explained(X_train, train_weights, X, weights):
    """Explained variance of X by PCA of X_train with 0 .. n_features components.

    Element k is ``explained_variance`` of PCA(k) fitted on X_train and measured
    on X; with X = X_train it is ``[0, *cumsum(explained_variance_ratio_)]``.
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    mean = np.average(X_train, axis=0, weights=train_weights)
    centered = X_train - mean
    if train_weights is not None:
        centered *= np.sqrt(train_weights / train_weights.sum())[:, None]
    if centered.shape[0] >= centered.shape[1]:
        _, vectors = np.linalg.eigh(centered.T @ centered)
        components = vectors[:, ::-1]
    else:
        components = np.linalg.svd(centered, full_matrices=False)[2].T
    shifted = np.asarray(X, dtype=np.float64) - mean
    captured = np.square(shifted @ components)
    per_row = np.square(shifted).sum(axis=1)
    if weights is None:
        captured, base = captured.sum(axis=0), per_row.sum()
    else:
        captured, base = weights @ captured, per_row @ weights
    residual = base - np.concatenate([[0.0], np.cumsum(captured)])
    curve = np.full(X.shape[1] + 1, np.nan)
    # Held-out rows without variance give -inf: no width reaches a fraction there.
    with np.errstate(divide="ignore", invalid="ignore"):
        curve[: residual.size] = 1.0 - np.maximum(residual, 0.0) / _total_variance(
            X, weights
        )
    # Components beyond the training rows' rank explain nothing more.
    return np.fmax.accumulate(np.nan_to_num(curve, nan=-np.inf))


def _width_for(curve, fraction):
    """Smallest width whose explained variance reaches `fraction`, else the widest."""
    reached = np.flatnonzero(curve[1:] >= fraction)
    return int(reached[0]) + 1 if reached.size else curve.size - 1


def _predicted_width(last, pca_curve, fraction, lo, hi):
    """Guess the width reaching `fraction`, strictly inside (lo, hi).

    Assumes the autoencoder leaves the same share of PCA's unexplained variance
    unexplained at every width as at the width fitted last.
    """
    pca_left = 1.0 - pca_curve[last.n_components]
    ratio = (1.0 - last.explained_variance) / pca_left if pca_left > 0 else 1.0
    if ratio > 0:
        width = _width_for(1.0 - (1.0 - pca_curve) * ratio, fraction)
    else:
        width = lo + 1
    return min(max(width, lo + 1), hi - 1)
