"""Explained variance: how much of the rows' variance a reconstruction keeps.

The measure behind ``explained_variance_score_``, the width search and
`skae.metrics.explained_variance`, a chunk of rows at a time. Never imports
scikit-learn.
"""

import numpy as np
import scipy.sparse
import torch
from torch import nn

import skae._distributed as _distributed
from skae._missing import reconstructor
from skae._rows import held_out_indices
from skae._sparse import batch_rows
from skae._training import apply_in_batches
from skae._validation import early_stopping_on

# Rows reconstructed at a time when measuring the explained variance of a fit.
MEASURED_ROWS = 8192


def fraction_explained(residual, total):
    """Return 1 - residual / total; r2_score's 1.0 or 0.0 when total is 0."""
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return float(1.0 - residual / total)


def row_sums(squares, weights):
    """Sum of squared entries over the rows, each row weighted."""
    per_row = squares.sum(axis=1)
    return float(per_row.sum() if weights is None else per_row @ weights)


def held_out_rows(state, config, n_samples):
    """Return the indices of the rows the fit of `state` held out, or None."""
    split = state.history.split
    if not early_stopping_on(config, n_samples) or split is None:
        return None
    if split["n_samples"] != n_samples:
        return None
    return held_out_indices(split).numpy()


def measured_explained_variance(state, config, X, weights, complete=False):
    """Return the explained variance of the model of `state`, just fitted on X.

    Measured on the rows early stopping held out, else on every training row.
    A fit that returned PCA of all the rows measured it itself, before (see
    `skae._trainer`): that model has seen the held-out rows. `complete` says
    that X has no missing entry, so no row needs completing first.
    """
    measured = state.history.held_out_explained_variance
    if measured is not None:
        return measured
    encoder, decoder = state.inference_modules()
    return explained_variance_of_model(
        encoder,
        decoder,
        None if complete else state.inference_fill(),
        state.device,
        X,
        weights,
        held_out_rows(state, config, X.shape[0]),
    )


def explained_variance_of_model(encoder, decoder, fill, device, X, weights, rows):
    """Return the explained variance of the rows `rows` of X (all when None).

    Reconstructed by the modules in fixed chunks on `device`; `fill` completes
    rows with missing entries first, and None says X has none, so no chunk is
    searched for them.
    """
    if fill is None:
        # What the completing reconstructor computes on complete rows.
        autoencoder = nn.Sequential(encoder, decoder)
    else:
        autoencoder = reconstructor(encoder, decoder, fill)
    return explained_variance_of_rows(
        lambda batch: apply_in_batches(autoencoder, batch, device=device),
        X,
        weights,
        rows,
    )


def explained_variance_of_rows(reconstruct, X, weights, rows=None):
    """Return the explained variance of the rows `rows` of X (all when None).

    A chunk at a time: X may be a memory map larger than memory, or sparse.
    Missing entries (NaN) count neither in the residual nor in the total.
    `reconstruct` maps dense rows to their reconstruction.
    """
    if rows is not None:
        X = X[rows]
        weights = None if weights is None else weights[rows]
    mean = observed_mean(X, weights)
    residual = total = 0.0
    step = batch_rows(X.shape[1], MEASURED_ROWS)
    for start in range(0, X.shape[0], step):
        part = X[start : start + step]
        if scipy.sparse.issparse(part):
            part = part.toarray()
        part_weights = None if weights is None else weights[start : start + step]
        difference = part - reconstruct(part)
        residuals = squared_norms(difference)
        deviations = squared_norms(part - mean)
        if np.isnan(residuals).any():
            # Missing entries count neither in the residual nor in the total.
            residuals = squared_norms(np.nan_to_num(difference))
            deviations = squared_norms(np.nan_to_num(part - mean))
        residual += weighted_sum(residuals, part_weights)
        total += weighted_sum(deviations, part_weights)
    # Over every rank's rows in a distributed fit.
    residual, total = _distributed.all_sum_floats(residual, total)
    return fraction_explained(residual, total)


def squared_norms(rows):
    """Return each row's sum of squares, in float64 (squares of float64 values).

    einsum casts to float64 as it goes: the same sums as squaring a float64
    copy, in about a third of the time and without the copy.
    """
    return np.einsum("ij,ij->i", rows, rows, dtype=np.float64)


def weighted_sum(values, weights):
    """Return the sum of `values`, each weighted (None: all weigh 1)."""
    return float(values.sum() if weights is None else values @ weights)


def observed_mean(X, weights):
    """Return the (weighted) mean of each column over its observed entries."""
    if _distributed.current() is not None:
        return _shared_observed_mean(X, weights)
    if scipy.sparse.issparse(X):
        if weights is None:
            return np.asarray(X.mean(axis=0, dtype=np.float64)).ravel()
        return np.asarray(X.T @ weights).ravel() / weights.sum()
    observed = ~np.isnan(X)
    if observed.all():
        if weights is None:
            return X.mean(axis=0, dtype=np.float64)
        return (weights @ X) / weights.sum()
    return _mean_of_sums(*_observed_sums(X, weights, observed))


def _observed_sums(X, weights, observed=None):
    """Return each column's (weighted) count and sum of observed entries.

    `observed`: X's mask of observed entries, when already known.
    """
    row_weights = np.ones(X.shape[0]) if weights is None else weights
    if scipy.sparse.issparse(X):
        # Sparse rows miss nothing: every row counts in every column.
        counts = np.full(X.shape[1], float(row_weights.sum()))
        return counts, np.asarray(X.T @ row_weights).ravel()
    if observed is None:
        observed = ~np.isnan(X)
    return row_weights @ observed, row_weights @ np.where(observed, X, 0.0)


def _mean_of_sums(counts, sums):
    """Return sums / counts, 0 where a column has no count."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, 0.0)


def _shared_observed_mean(X, weights):
    """`observed_mean` over every rank's rows (across ranks)."""
    summed = _distributed.all_sum(
        torch.from_numpy(np.stack(_observed_sums(X, weights)).astype(np.float64))
    ).numpy()
    return _mean_of_sums(*summed)
