"""The width search: n_components as a fraction of variance, as in PCA.

`fit_by_variance` fits `MLPAutoencoder` at the smallest code width whose
reconstruction explains a fraction of the variance on the rows the fit measures
(the early-stopping rows it holds out, else the training rows). PCA fitted on
the training rows gives an upper bound for free: the autoencoder starts as
PCA, and early stopping keeps that start when training does not beat it. Each
width tried is an ordinary fit of a clone, so it can stop early; the chosen
clone's fitted state becomes the estimator's, which is then exactly
``MLPAutoencoder(n_components=n_components_, random_state=seed).fit(X)``.
"""

import math
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse
from sklearn.base import clone

from skae._budget import check_max_time
from skae._sparse import batch_rows
from skae._state import held_out_indices
from skae._validation import check_validation_size, early_stopping_on
from skae.metrics import _fraction_explained, _row_sums

# Rows reconstructed at a time when measuring the explained variance of a fit.
MEASURED_ROWS = 8192
# The least time budget a width of a budgeted search gets (seconds): it then
# trains one epoch and warns.
MIN_SHARE = 1e-3
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


def check_measurable(estimator, n_samples):
    """Refuse a search whose widths would be measured on too few rows to decide."""
    measured, where = n_samples, "the training rows"
    if early_stopping_on(estimator, n_samples):
        measured = check_validation_size(estimator, n_samples)
        where = f"the rows early stopping holds out (of {n_samples})"
    if measured < MIN_MEASURED_ROWS:
        least = math.floor((MIN_MEASURED_ROWS - 1) / estimator.validation_fraction)
        raise ValueError(
            f"n_components={estimator.n_components!r} chooses the width by the "
            f"variance explained on {where}: {measured} row, too few to decide "
            "between widths (every width explains as much of one row). Fit on "
            f"at least {least + 1} rows, set early_stopping=False, or set "
            "n_components to an int."
        )


def held_out_rows(estimator, n_samples):
    """Return the indices of the rows the last fit held out, or None."""
    split = estimator._state.history.split
    if not early_stopping_on(estimator, n_samples) or split is None:
        return None
    if split["n_samples"] != n_samples:
        return None
    return held_out_indices(split).numpy()


def measured_explained_variance(estimator, X, weights):
    """Return the explained variance of a model just fitted on validated X.

    Measured on the rows early stopping held out, else on every training row.
    A fit that returned PCA of all the rows measured it itself, before (see
    `skae._fitting`): that model has seen the held-out rows.
    """
    measured = estimator._state.history.held_out_explained_variance
    if measured is not None:
        return measured
    rows = held_out_rows(estimator, X.shape[0])
    return explained_variance_of_rows(estimator._reconstruct, X, weights, rows)


def explained_variance_of_rows(reconstruct, X, weights, rows=None):
    """Return the explained variance of the rows `rows` of X (all when None).

    A chunk at a time: X may be a memory map larger than memory, or sparse.
    Missing entries (NaN) count neither in the residual nor in the total.
    `reconstruct` maps dense rows to their reconstruction.
    """
    if rows is not None:
        X = X[rows]
        weights = None if weights is None else weights[rows]
    mean = _observed_mean(X, weights)
    residual = total = 0.0
    step = batch_rows(X.shape[1], MEASURED_ROWS)
    for start in range(0, X.shape[0], step):
        part = X[start : start + step]
        if scipy.sparse.issparse(part):
            part = part.toarray()
        part_weights = None if weights is None else weights[start : start + step]
        squares = np.square(part - reconstruct(part), dtype=np.float64)
        deviations = np.square(part - mean, dtype=np.float64)
        if np.isnan(squares).any():
            squares, deviations = np.nan_to_num(squares), np.nan_to_num(deviations)
        residual += _row_sums(squares, part_weights)
        total += _row_sums(deviations, part_weights)
    return _fraction_explained(residual, total)


def _observed_mean(X, weights):
    """Return the (weighted) mean of each column over its observed entries."""
    if scipy.sparse.issparse(X):
        if weights is None:
            return np.asarray(X.mean(axis=0, dtype=np.float64)).ravel()
        return np.asarray(X.T @ weights).ravel() / weights.sum()
    observed = ~np.isnan(X)
    if observed.all():
        if weights is None:
            return X.mean(axis=0, dtype=np.float64)
        return (weights @ X) / weights.sum()
    row_weights = np.ones(X.shape[0]) if weights is None else weights
    counts = row_weights @ observed
    sums = row_weights @ np.where(observed, X, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, 0.0)


def fit_by_variance(estimator, data, sample_weight, started):
    """Find the smallest width explaining n_components of the data's variance.

    Checks what the search needs of the validated `data` and tries every width
    on clones of `estimator`, which it never changes. Returns (the chosen
    fitted clone, its explained variance, the record of every width tried):
    the estimator publishes them. A ``max_time`` is shared among the widths:
    each fit gets the time left divided by the fits the bracket may still need.
    """
    fraction = float(estimator.n_components)
    if estimator.warm_start and "_state" in estimator.__dict__:
        raise ValueError(
            f"warm_start=True continues training a model of a known width, but "
            f"n_components={estimator.n_components!r} searches the width afresh. "
            f"Set n_components={estimator.n_components_} (the width found) to "
            "continue, or warm_start=False to search again."
        )
    X = data.X
    if data.missing or scipy.sparse.issparse(X):
        raise ValueError(
            f"n_components={estimator.n_components!r} searches the width by the "
            "variance of complete, dense rows, but X is "
            f"{'sparse' if scipy.sparse.issparse(X) else 'missing entries (NaN)'}"
            ": set n_components to an int."
        )
    weights = None if data.weight is None else data.weight.numpy().astype(np.float64)
    if _total_variance(X, weights) == 0:
        raise ValueError(
            f"n_components={estimator.n_components!r} asks for a fraction of X's "
            f"variance, but X has none (n_samples={X.shape[0]}, every column "
            "constant): set n_components to an int."
        )
    check_measurable(estimator, X.shape[0])
    seed = _shared_seed(estimator.random_state)
    n_features = X.shape[1]
    search = _WidthSearch(estimator, X, sample_weight, seed, started)

    # The first width halves PCA's bound on all the rows; once a fit has shown
    # which rows it holds out, the bound is PCA's width on those rows.
    # No width beyond the rows' rank explains more than the rank does.
    widest = min(n_features, X.shape[0])
    lo, hi = (
        0,
        min(_width_for(_pca_explained(X, weights, X, weights), fraction), widest),
    )
    first = search.fit(max(1, (lo + hi + 1) // 2), _fits_left(lo, hi))
    rows = held_out_rows(first.estimator, X.shape[0])
    if rows is None:
        pca_curve = _pca_explained(X, weights, X, weights)
    else:
        widest = min(n_features, X.shape[0] - len(rows))
        keep = np.ones(X.shape[0], dtype=bool)
        keep[rows] = False
        pca_curve = _pca_explained(
            X[keep],
            None if weights is None else weights[keep],
            X[rows],
            None if weights is None else weights[rows],
        )
    hi = min(_width_for(pca_curve, fraction), widest)
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
        where = (
            "held-out"
            if held_out_rows(chosen.estimator, X.shape[0]) is not None
            else "training"
        )
        warnings.warn(
            f"n_components={estimator.n_components!r} was not reached: no width "
            f"up to {hi} (PCA's width for it) explained that fraction of the "
            f"variance of the {where} rows. The widest tried, n_components_="
            f"{hi}, explains {chosen.explained_variance:.4f} "
            "(explained_variance_score_). Train longer (max_iter), start from "
            "PCA (init='pca'), or set n_components to an int.",
            UserWarning,
            stacklevel=4,
        )
    return chosen.estimator, chosen.explained_variance, search.record


class _Candidate:
    """One width tried: its fitted clone and what the search recorded."""

    def __init__(self, estimator, explained_variance):
        self.estimator = estimator
        self.explained_variance = explained_variance

    @property
    def n_components(self):
        return self.estimator.n_components

    def passed(self, fraction):
        return self.explained_variance >= fraction


class _WidthSearch:
    """Fits clones of an estimator at given widths, keeping every result."""

    def __init__(self, estimator, X, sample_weight, seed, started):
        self.estimator = estimator
        self.deadline = None
        if estimator.max_time is not None:
            self.deadline = started + check_max_time(estimator.max_time)
        self.X = X
        self.sample_weight = sample_weight
        self.seed = seed
        self.tried = {}
        self.record = []
        self.last = None

    def fit(self, n_components, fits_left):
        """Fit the width `n_components` (once) and return its candidate.

        Under a time budget, this fit gets 1 / `fits_left` of the time left.
        """
        if n_components in self.tried:
            self.last = self.tried[n_components]
            return self.last
        start = time.perf_counter()
        fitted = clone(self.estimator).set_params(
            n_components=int(n_components), random_state=self.seed
        )
        if self.deadline is not None:
            # A search over time still fits each width (one epoch at least).
            share = max(self.deadline - start, 0.0) / fits_left
            fitted.set_params(max_time=max(share, MIN_SHARE))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fitted.fit(self.X, sample_weight=self.sample_weight)
        interrupted = any(
            "Training interrupted by user" in str(warning.message) for warning in caught
        )
        if interrupted:
            # Ctrl-C: the search stops here, and the clone's advice to resume it
            # would be wrong: the estimator is left as it was.
            warnings.warn(
                f"Width search interrupted by user while fitting n_components="
                f"{n_components}: this MLPAutoencoder is left as it was before "
                "fit, and there is nothing to resume. Call fit again to search.",
                UserWarning,
                stacklevel=5,
            )
            raise KeyboardInterrupt
        for warning in caught:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
        seconds = time.perf_counter() - start
        explained = fitted.explained_variance_score_
        self.record.append(
            {
                "n_components": int(n_components),
                "explained_variance": float(explained),
                "n_iter": int(fitted.n_iter_),
                "seconds": seconds,
            }
        )
        if self.estimator.verbose:
            print(
                f"n_components={n_components}: explained variance "
                f"{explained:.4f} ({seconds:.1f} s)"
            )
        candidate = _Candidate(fitted, float(explained))
        self.tried[n_components] = self.last = candidate
        return candidate


def _fits_left(lo, hi):
    """Fits a bisection of the bracket (lo, hi] may still need, the last included."""
    return max(1, math.ceil(math.log2(max(hi - lo, 1)))) + 1


def _shared_seed(random_state):
    """Return one int seed for every width, drawn as `make_generator` draws it."""
    if isinstance(random_state, Integral):
        return int(random_state)
    if random_state is None:
        random_state = np.random.mtrand._rand
    return int(random_state.randint(np.iinfo(np.int32).max))


def _total_variance(X, weights):
    """Weighted sum of squared deviations from the column means."""
    mean = np.average(X, axis=0, weights=weights)
    return _row_sums(np.square(X - mean, dtype=np.float64), weights)


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


def check_sizing_metadata(explained_variance, search):
    """Return a model file's (explained_variance_score_, n_components_search_)."""
    if explained_variance is not None and not _is_number(explained_variance):
        raise ValueError("explained_variance_score_ should be a number or null.")
    if search is not None:
        keys = {"n_components", "explained_variance", "n_iter", "seconds"}
        if not isinstance(search, list) or not all(
            isinstance(entry, dict)
            and set(entry) == keys
            and all(_is_number(value) for value in entry.values())
            for entry in search
        ):
            raise ValueError(
                "n_components_search_ should list objects with the keys "
                f"{sorted(keys)}."
            )
        search = [dict(entry) for entry in search]
    return (None if explained_variance is None else float(explained_variance)), search


def _is_number(value):
    """Whether a JSON value is a number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
