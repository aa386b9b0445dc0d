"""Checks of MLPAutoencoder's parameters and data, raising before anything changes.

Each function reads the estimator's parameters (never its fitted state) and
either returns what the fit needs or raises a ValueError that names the
parameter, its value and the rule.
"""

import math
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse
from sklearn.utils.validation import _check_sample_weight

from skae._config import resolve_init
from skae._training import NOISE_KINDS

FLOAT32_MAX = float(np.finfo(np.float32).max)
# Training squares X in float32 (the loss, PCA's covariance): larger values overflow.
TRAINABLE_MAX = 1e15
# early_stopping="auto" holds out validation data from this many samples on.
AUTO_VALIDATION_MIN = 1000


def resolved_init(estimator):
    """Return "pca" or "random", resolving "auto"."""
    return resolve_init(
        estimator.init, estimator.latent_activation, estimator.output_activation
    )


def check_hidden_layer_sizes(estimator):
    """Return hidden_layer_sizes as "auto" or a tuple of positive ints, or raise."""
    sizes = estimator.hidden_layer_sizes
    if isinstance(sizes, str) and sizes == "auto":
        return "auto"
    sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
    for size in sizes:
        if not isinstance(size, Integral) or isinstance(size, bool) or size < 1:
            raise ValueError(
                "hidden_layer_sizes must be positive integers, got "
                f"hidden_layer_sizes={estimator.hidden_layer_sizes!r}."
            )
    return tuple(int(size) for size in sizes)


def check_width(n_components, n_features):
    """Refuse a bool, or an int width above `n_features` (None and floats pass)."""
    if isinstance(n_components, (bool, np.bool_)):
        # scikit-learn's Interval(Integral, 1, None) lets True through as 1.
        raise ValueError(
            f"n_components={n_components!r} is a bool: give the width of the "
            "code as an int (e.g. n_components=2)."
        )
    # A float is a fraction of the variance: its width is searched within n_features.
    if isinstance(n_components, Integral) and n_components > n_features:
        raise ValueError(
            f"n_components={n_components} must be <= n_features={n_features}."
        )


def check_fit_params(estimator, X):
    """Check the parameters that depend on the data, but the width.

    `check_width` comes first, before the missing entries are checked (see
    `BaseAutoencoder._prepare`).
    """
    if estimator.init == "pca" and not (
        estimator.latent_activation == estimator.output_activation == "identity"
    ):
        raise ValueError(
            "init='pca' starts the model as PCA, which needs "
            "latent_activation='identity' and output_activation='identity' "
            f"(got {estimator.latent_activation!r} and "
            f"{estimator.output_activation!r}); "
            "use init='random' or init='auto'."
        )
    if estimator.loss == "binary_crossentropy":
        if estimator.output_activation != "logistic":
            raise ValueError(
                "loss='binary_crossentropy' needs outputs in [0, 1]: set "
                "output_activation='logistic' (got "
                f"output_activation={estimator.output_activation!r})."
            )
        low, high = _extremes(X)
        if low < 0 or high > 1:
            raise ValueError(
                "loss='binary_crossentropy' needs X in [0, 1], but X ranges "
                f"over [{low:.4g}, {high:.4g}]: scale it (e.g. with "
                "MinMaxScaler) or use loss='squared_error'."
            )


def early_stopping_on(estimator, n_samples):
    """Resolve early_stopping="auto".

    On for a PCA start with at least two rows: the held-out rows decide whether
    training beat PCA (else the fit returns PCA). With a random start, on from
    AUTO_VALIDATION_MIN samples.
    """
    if estimator.early_stopping == "auto":
        if resolved_init(estimator) == "pca":
            return n_samples >= 2
        return n_samples >= AUTO_VALIDATION_MIN
    return bool(estimator.early_stopping)


def check_validation_size(estimator, n_samples):
    """Return the number of rows held out for early stopping, or raise."""
    size = int(np.ceil(estimator.validation_fraction * n_samples))
    if size < 1 or n_samples - size < 1:
        raise ValueError(
            f"early_stopping=True with validation_fraction="
            f"{estimator.validation_fraction} needs at least one training and one "
            f"validation sample; got n_samples={n_samples}."
        )
    return size


def check_noise(estimator):
    """Return the noise parameter as a dict (empty for none), or raise."""
    noise = estimator.noise
    if noise is None:
        return {}
    if not isinstance(noise, dict):
        noise = {"gaussian": float(noise)}
    unknown = set(noise) - set(NOISE_KINDS)
    if unknown:
        raise ValueError(
            f"noise={estimator.noise!r} has unknown keys {sorted(unknown)}; use "
            f"{NOISE_KINDS}."
        )
    gaussian = noise.get("gaussian", 0.0)
    mask = noise.get("mask", 0.0)
    if not isinstance(gaussian, Real) or not gaussian >= 0:
        raise ValueError(f"noise['gaussian']={gaussian!r} must be a float >= 0.")
    if not isinstance(mask, Real) or not 0 <= mask < 1:
        raise ValueError(f"noise['mask']={mask!r} must be in [0, 1).")
    hidden = noise.get("missing", 0.0)
    if not isinstance(hidden, Real) or not 0 <= hidden < 1:
        raise ValueError(f"noise['missing']={hidden!r} must be in [0, 1).")
    return {kind: float(value) for kind, value in noise.items() if value}


def check_same_architecture(fitted, architecture):
    """Refuse to continue training a model whose shape has changed."""
    for name, value in architecture.items():
        if value != fitted[name] and name != "n_features":
            raise ValueError(
                f"{name}={value!r} differs from {fitted[name]!r}, the value the "
                "model was built with: continuing training (warm_start=True or "
                "partial_fit) needs the same architecture. Use fit with "
                "warm_start=False to start afresh."
            )


def check_weights(sample_weight, X):
    """Return sample_weight as float32, refusing what cannot weigh a fit.

    Checked here rather than left to the installed scikit-learn, whose checks
    differ between versions (1.7 accepts all-zero weights).
    """
    weights = _check_sample_weight(sample_weight, X, dtype=np.float64)
    if not np.isfinite(weights).all():
        raise ValueError("sample_weight contains NaN or infinity.")
    if (weights < 0).any():
        raise ValueError("Negative values in data passed to sample_weight.")
    if not (weights > 0).any():
        raise ValueError(
            "sample_weight must have at least one non-zero entry; got all zeros."
        )
    if float(weights.max()) > FLOAT32_MAX:
        raise ValueError("sample_weight has values beyond the float32 range.")
    return weights.astype(np.float32)


def check_finite_output(output, X):
    """Return `output`, or raise if X was too large for the model to stay finite."""
    if not np.isfinite(output).all():
        raise ValueError(
            "The model's output is not finite for this X (values up to "
            f"{_largest_magnitude(X):.3g} in magnitude): the network overflows "
            "float32. Scale X as the training data was scaled."
        )
    return output


def _largest_magnitude(X):
    """Return max(|X|) from X's extremes, without allocating |X|."""
    if not (X.size if not scipy.sparse.issparse(X) else X.shape[0] * X.shape[1]):
        return 0.0
    low, high = _extremes(X)
    return max(abs(low), abs(high))


def _extremes(X):
    """Return (min, max) of X over its observed (not NaN) entries, as floats."""
    low, high = float(X.min()), float(X.max())
    if math.isnan(low) or math.isnan(high):
        # Only computed when there is a NaN: nanmin reads X once more. An
        # all-NaN X has no extremes; 0 lets the checks that need it refuse it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = float(np.nanmin(X)), float(np.nanmax(X))
        if math.isnan(low):
            return 0.0, 0.0
    return low, high


def check_sparse_complete(X):
    """Refuse NaN among a sparse X's stored values."""
    if scipy.sparse.issparse(X) and np.isnan(X.data).any():
        raise ValueError(
            "Sparse X contains NaN: skae reads the entries a sparse matrix does "
            "not store as zeros, and does not take NaN among those it stores. "
            "Pass a dense array to mark missing entries with NaN."
        )


def rank_parameters(shape, n_components):
    """Numbers in a rank-n_components model of an X of `shape`: k * (n + p - k).

    Fewer observed entries than this do not determine the missing ones.
    """
    n_samples, n_features = shape
    return n_components * (n_samples + n_features - n_components)


def check_missing(estimator, X, first_fit):
    """Return whether X has missing entries (NaN); refuse what cannot be learnt.

    Sparse X must be complete. When a model is built from X (`first_fit`),
    its observed entries must at least number the parameters of a
    rank-n_components matrix of X's shape, ``k * (n_samples + n_features - k)``:
    with fewer, the missing entries are not determined by the observed ones.
    """
    if scipy.sparse.issparse(X):
        return False
    missing = np.isnan(X)
    n_missing = int(np.count_nonzero(missing))
    if not n_missing:
        return False
    n_samples, n_features = X.shape
    if n_missing == X.size:
        raise ValueError(
            f"X has no observed entry: all its {X.size} entries are NaN, from "
            "which nothing can be learnt."
        )
    k = estimator.n_components
    if first_fit and isinstance(k, Integral):
        needed = rank_parameters(X.shape, k)
        observed = X.size - n_missing
        if observed < needed:
            fitting = [
                width
                for width in range(1, k)
                if rank_parameters(X.shape, width) <= observed
            ]
            if fitting:
                fix = f"Lower n_components to {fitting[-1]} or less, or give more rows."
            elif n_features == 1:
                fix = (
                    "X has a single column, so a missing entry has no other "
                    "entries in its row to be predicted from: impute it with "
                    "sklearn.impute.SimpleImputer, or give more columns."
                )
            else:
                fix = "Give more rows: no width is determined by these entries."
            raise ValueError(
                f"X has {observed} observed entries and {n_missing} missing "
                f"(NaN, {n_missing / X.size:.0%}), fewer than the {needed} "
                f"numbers that a model with n_components={k} of {n_samples} "
                f"rows and {n_features} features has (n_components * "
                "(n_samples + n_features - n_components)): the missing "
                f"entries are not determined by the observed ones. {fix}"
            )
    return True


def check_trainable_range(X):
    """Raise if X holds values whose squares overflow float32 in training."""
    largest = _largest_magnitude(X)
    if largest > TRAINABLE_MAX:
        raise ValueError(
            f"X contains values up to {largest:.3g} in magnitude; training "
            "squares them in float32, which overflows beyond "
            f"{TRAINABLE_MAX:.0e}: rescale X, e.g. with StandardScaler."
        )


def check_float32_range(X):
    """Raise if finite float64 X holds values that overflow float32."""
    if X.dtype == np.float64:
        largest = _largest_magnitude(X)
        if largest > FLOAT32_MAX:
            raise ValueError(
                f"X contains values up to {largest:.3g} in magnitude, beyond the "
                f"float32 range ({FLOAT32_MAX:.3g}) that skae computes in: "
                "rescale X, e.g. with StandardScaler."
            )
