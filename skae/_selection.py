"""The last word of a fit that started as PCA: keep the training, or return PCA.

Torch only. Early stopping picks the best epoch by the mean validation score,
a maximum over noisy means; on few or heavy-tailed validation rows it can pick
an epoch that is no better than PCA, or worse on new data. So the epoch it
keeps must beat the PCA start beyond noise: on the held-out rows, the paired
per-row differences of squared error (model minus PCA) must have a mean below
zero by ``Z`` standard errors, or by Student's t quantile at the same
confidence where the rows are few (see `critical_value`). Otherwise the fit
returns PCA of all the rows.
"""

import math

import torch
from scipy.special import ndtr, stdtrit

import skae._distributed as _distributed
from skae._missing import filled, principal_axes
from skae._sparse import batch_rows
from skae._torch_utils import module_device

# One-sided: the model is kept when it is better with ~98% confidence.
Z = 2.0
CONFIDENCE = float(ndtr(Z))
# Fewer held-out rows than this (Kish's effective number) never keep the
# model: early stopping chose its epoch as the best on these same rows, an
# optimism no test on a handful of rows can correct (on 19 rows of noise, 2
# held out, the default kept a network worse than PCA in 5 of 18 fits).
MIN_ROWS = 5


def critical_value(effective_rows):
    """Return the standard errors a mean difference on `effective_rows` must clear.

    Student's t quantile at the confidence of `Z` standard errors of a normal
    mean, with ``effective_rows - 1`` degrees of freedom (at least 1): the
    standard error is itself estimated from the rows, and on few rows it can
    be far too small: 2.87 on 5 rows, 2.14 on 20, 2.02 on 124, and `Z` on
    many. Infinite (the model is never kept) on fewer than `MIN_ROWS`.
    """
    # Kish's number of equal weights is that count up to rounding.
    if effective_rows < MIN_ROWS * (1 - 1e-9):
        return math.inf
    return float(stdtrit(effective_rows - 1.0, CONFIDENCE))


def beats_pca(
    encoder,
    decoder,
    X,
    sample_weight,
    X_validation,
    validation_weight,
    fill=None,
    basis=None,
):
    """Whether the model beats PCA of X on X_validation beyond noise.

    Returns (decision, statistics): the weighted mean of the per-row
    differences of mean squared error (model minus PCA, so negative favours
    the model), its standard error, the number of validation rows, and PCA's
    validation score (negative mean squared error). With `fill`, rows may have
    missing entries: both models see them filled, and are scored on the
    observed ones. X and X_validation may be `skae._sparse.SparseRows`.
    `basis`: PCA of X, (components, mean), when already known.
    """
    # X may stay in host memory when it is too big for the model's device.
    device = module_device(encoder)
    if sample_weight is not None:
        sample_weight = sample_weight.to(X.device)
    encoder.eval()
    decoder.eval()
    with torch.no_grad():
        first = X_validation[:1].to(device)
        if fill is not None:
            first = filled(first, fill)
        n_components = encoder(first).shape[1]
        if basis is None:
            basis = principal_axes(X, n_components, sample_weight)
        components, mean = basis
        components, mean = components.to(device), mean.to(device)
        model_parts, pca_parts = [], []
        step = batch_rows(X_validation.shape[1])
        for start in range(0, X_validation.shape[0], step):
            batch = X_validation[start : start + step].to(device)
            inputs = batch if fill is None else filled(batch, fill)
            pca_output = pca_reconstruction(inputs, components, mean)
            model_parts.append(row_errors(decoder(encoder(inputs)), batch))
            pca_parts.append(row_errors(pca_output, batch))
        model_errors, pca_errors = torch.cat(model_parts), torch.cat(pca_parts)
    return paired_decision(model_errors, pca_errors, validation_weight)


def pca_reconstruction(X, components, mean):
    """Return PCA's reconstruction of the rows of X from its axes and mean."""
    return (X - mean) @ components.T @ components + mean


def paired_decision(model_errors, pca_errors, weight=None):
    """Whether the model's per-row errors beat PCA's beyond noise; and statistics.

    The weighted mean of the paired differences (model minus PCA) must lie
    below zero by `critical_value` standard errors (over Kish's effective
    number of rows).
    """
    if _distributed.current() is not None:
        return _shared_paired_decision(model_errors, pca_errors, weight)
    differences = (model_errors - pca_errors).double()
    pca_squared = pca_errors.double()
    n_rows = differences.shape[0]
    if weight is None:
        weights = torch.ones_like(differences)
    else:
        weights = weight.to(differences)
    weights = weights / weights.sum()
    average = float((weights * differences).sum())
    pca_score = -float((weights * pca_squared).sum())
    if n_rows < 2:
        return False, {
            "mean_difference": average,
            "standard_error": math.inf,
            "n_rows": n_rows,
            "pca_score": pca_score,
        }
    variance = float((weights * (differences - average) ** 2).sum())
    # The effective number of rows of a weighted mean (Kish).
    effective = 1.0 / float((weights**2).sum())
    standard_error = math.sqrt(variance / max(effective - 1.0, 1.0))
    decision = average + critical_value(effective) * standard_error < 0
    return decision, {
        "mean_difference": average,
        "standard_error": standard_error,
        "n_rows": n_rows,
        "pca_score": pca_score,
    }


def _shared_paired_decision(model_errors, pca_errors, weight):
    """`paired_decision` over the held-out rows of every rank, from summed moments."""
    differences = (model_errors - pca_errors).double()
    if weight is None:
        weights = torch.ones_like(differences)
    else:
        weights = weight.to(differences)
    sums = _distributed.all_sum(
        torch.stack(
            [
                torch.tensor(float(differences.shape[0]), dtype=torch.float64),
                weights.sum().cpu(),
                (weights * differences).sum().cpu(),
                (weights * pca_errors.double()).sum().cpu(),
                (weights**2).sum().cpu(),
            ]
        )
    )
    n_rows, total, difference_sum, pca_sum, squared_weights = sums.tolist()
    n_rows = int(n_rows)
    average = difference_sum / total
    statistics = {
        "mean_difference": average,
        "standard_error": math.inf,
        "n_rows": n_rows,
        "pca_score": -pca_sum / total,
    }
    spread = (weights * (differences - average) ** 2).sum().cpu()
    variance = float(_distributed.all_sum(spread[None])[0]) / total
    if n_rows < 2:
        return False, statistics
    effective = total**2 / squared_weights
    statistics["standard_error"] = math.sqrt(variance / max(effective - 1.0, 1.0))
    critical = critical_value(effective)
    return average + critical * statistics["standard_error"] < 0, statistics


def row_errors(output, X):
    """Mean squared error of each row over its observed (not NaN) entries."""
    squares = (output - X).square()
    observed = ~torch.isnan(squares)
    if bool(observed.all()):
        return squares.mean(dim=1)
    counts = observed.sum(dim=1).clamp(min=1)
    return torch.where(observed, squares, 0.0).sum(dim=1) / counts
