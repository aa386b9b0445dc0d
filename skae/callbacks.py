"""Callbacks for `MLPAutoencoder(callbacks=[...])`, called after every epoch.

A callback is any callable ``f(estimator, record)``; it receives the estimator
being fitted and the epoch's `EpochRecord`, and stops training by returning True.
"""

from pathlib import Path

import skae._distributed as _distributed
from skae._persistence import save_model


class Checkpoint:
    """Save the model every `every` epochs during a fit, to resume it later.

    Each save is atomic (a temporary file renamed over the old one) and holds
    everything needed to finish the fit: weights, optimizer state, learning-rate
    schedule, stopping rule and random state. ``skae.load(path).resume(X)`` then
    runs the remaining epochs; on the CPU the result equals an uninterrupted fit
    bit for bit.

    Parameters
    ----------
    path : str or os.PathLike
        Where to save. It may contain ``{epoch}`` (the number of completed
        epochs) to keep one file per checkpoint, e.g. ``"ckpt-{epoch:03d}.skae"``;
        otherwise each checkpoint replaces the previous one.
    every : int, default=1
        Save after every `every`-th epoch.

    Notes
    -----
    In a fit across ranks (``distributed``), only rank 0 saves; every rank
    holds the same model. Resume it with as many ranks, each passing the rows
    it held.

    Attributes
    ----------
    saved_ : list of pathlib.Path
        The files written so far, in order.

    See Also
    --------
    skae.load : Reads a checkpoint back.
    skae.MLPAutoencoder.resume : Finishes the fit from a checkpoint.

    Examples
    --------
    >>> import numpy as np, skae, tempfile, os
    >>> from skae.callbacks import Checkpoint
    >>> X = np.random.RandomState(0).rand(100, 8)
    >>> folder = tempfile.mkdtemp()
    >>> checkpoint = Checkpoint(os.path.join(folder, "ckpt-{epoch}.skae"), every=2)
    >>> ae = skae.MLPAutoencoder(
    ...     2, max_iter=4, early_stopping=False, callbacks=[checkpoint]
    ... ).fit(X)
    >>> [path.name for path in checkpoint.saved_]
    ['ckpt-2.skae', 'ckpt-4.skae']
    >>> resumed = skae.load(checkpoint.saved_[0]).resume(X)
    >>> resumed.n_iter_
    4
    """

    def __init__(self, path, every=1):
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every={every!r} must be an int >= 1.")
        self.path = path
        self.every = every
        self.saved_ = []

    def __call__(self, estimator, record):
        """Save `estimator` if this epoch is a multiple of `every`."""
        epochs = record.epoch + 1
        if epochs % self.every or not _distributed.writes_files():
            # Across ranks, rank 0 writes: every rank holds the same model.
            return None
        path = Path(str(self.path).format(epoch=epochs))
        save_model(estimator, path, warn_dropped=False)
        self.saved_.append(path)
        return None

    def __repr__(self):
        """Show the path and the interval, as they were given."""
        return f"Checkpoint({str(self.path)!r}, every={self.every})"
