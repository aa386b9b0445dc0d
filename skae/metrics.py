"""Reconstruction error and side-by-side comparison of dimensionality reducers."""

import time

import numpy as np
from sklearn.utils import get_tags
from sklearn.utils.validation import _check_sample_weight, check_array

from skae._variance import fraction_explained, row_sums

__all__ = ["compare", "explained_variance", "reconstruction_error"]


def reconstruction_error(estimator, X):
    """Mean squared error of ``inverse_transform(transform(X))`` against X.

    Works with any fitted transformer that has `transform` and
    `inverse_transform`: PCA, MLPAutoencoder, a Pipeline of them.

    Parameters
    ----------
    estimator : fitted transformer
        Has `transform` and `inverse_transform`.
    X : array-like of shape (n_samples, n_features)
        Data to reconstruct.

    Returns
    -------
    error : float
        ``mean((X - X_reconstructed) ** 2)`` over all entries. Multiply by
        n_features for the squared error per sample (per image).

    See Also
    --------
    compare : Fit several reducers and tabulate their errors and times.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from skae.metrics import reconstruction_error
    >>> X = np.random.RandomState(0).rand(50, 4)
    >>> round(reconstruction_error(PCA(n_components=4).fit(X), X), 12)
    0.0
    """
    # The estimator gets X as given (a DataFrame keeps its column names); the
    # error is computed on the validated array.
    X_array = _complete_array(X, "X")
    X_reconstructed = estimator.inverse_transform(estimator.transform(X))
    X = X_array
    return float(np.mean(np.square(X - X_reconstructed, dtype=np.float64)))


def explained_variance(estimator, X, *, mean=None, sample_weight=None):
    """Fraction of X's variance that the reconstruction of X explains.

    ``1 - sum(||x - x_reconstructed||^2) / sum(||x - mean||^2)`` over the rows
    x of X, where ``x_reconstructed = inverse_transform(transform(x))``. For
    PCA fitted on X it equals ``explained_variance_ratio_.sum()``; for any
    reducer it is scikit-learn's ``r2_score(X, X_reconstructed,
    multioutput="variance_weighted")``: the variance of every feature counts in
    proportion to its size, as in PCA. It is 1 for a perfect reconstruction and
    can be negative for a reconstruction worse than the mean.

    Works with any fitted transformer that has `transform` and
    `inverse_transform`: PCA, MLPAutoencoder, a Pipeline of them.

    Parameters
    ----------
    estimator : fitted transformer
        Has `transform` and `inverse_transform`.
    X : array-like of shape (n_samples, n_features)
        Data to reconstruct.
    mean : array-like of shape (n_features,), default=None
        The point the variance is measured around; None takes the column
        means of X (weighted by `sample_weight`). Pass the training data's
        means to measure held-out rows as PCA's ``mean_`` sees them.
    sample_weight : array-like of shape (n_samples,), default=None
        Weight of each row in both sums; None weighs all equally.

    Returns
    -------
    score : float
        The fraction explained. When X has no variance around `mean` (a
        single row, or constant columns), it is 1.0 for a perfect
        reconstruction and 0.0 otherwise, as ``r2_score`` decides.

    See Also
    --------
    reconstruction_error : The mean squared error of the same reconstruction.
    sklearn.decomposition.PCA : Its ``explained_variance_ratio_`` per component.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from skae.metrics import explained_variance
    >>> X = np.random.RandomState(0).rand(50, 4)
    >>> pca = PCA(n_components=2).fit(X)
    >>> bool(np.isclose(explained_variance(pca, X),
    ...                 pca.explained_variance_ratio_.sum()))
    True
    """
    X_array = _complete_array(X, "X")
    X_reconstructed = estimator.inverse_transform(estimator.transform(X))
    X = X_array
    weights = None
    if sample_weight is not None:
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64)
    if mean is not None:
        mean = np.asarray(mean, dtype=np.float64)
        if mean.shape != (X.shape[1],):
            raise ValueError(
                f"mean has shape {mean.shape}; expected ({X.shape[1]},), one "
                "value per feature of X."
            )
    return _explained_variance_of(X, X_reconstructed, mean=mean, weights=weights)


def _explained_variance_of(X, X_reconstructed, *, mean=None, weights=None):
    """`explained_variance` of validated arrays."""
    if mean is None:
        mean = np.average(X, axis=0, weights=weights)
    residual = row_sums(np.square(X - X_reconstructed, dtype=np.float64), weights)
    total = row_sums(np.square(X - mean, dtype=np.float64), weights)
    return fraction_explained(residual, total)


def compare(models, X_train, X_test, *, verbose=False):
    """Fit each model on X_train and measure how well it reconstructs X_test.

    Parameters
    ----------
    models : dict of str to transformer, or list of transformers
        Unfitted transformers with `transform` and `inverse_transform`. They are
        fitted in place, so they can be inspected or plotted afterwards. A list
        is named by class name and ``n_components``.
    X_train : array-like of shape (n_train_samples, n_features)
        Data each model is fitted on.
    X_test : array-like of shape (n_test_samples, n_features)
        Held-out data the errors are measured on.
    verbose : bool, default=False
        Print the name of each model before fitting it.

    Returns
    -------
    results : pandas.DataFrame
        One row per model, indexed by name, with the columns ``model`` (class
        name), ``n_components``, ``test_mse`` (mean squared error per entry),
        ``squared_error_per_image`` (summed over the features, averaged over the
        samples: the unit of Hinton & Salakhutdinov, Science 2006),
        ``fit_seconds``, ``transform_seconds`` and ``inverse_transform_seconds``
        (on X_test).

    See Also
    --------
    reconstruction_error : The error of one fitted model.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from skae.metrics import compare
    >>> X = np.random.RandomState(0).rand(60, 5)
    >>> table = compare({"pca2": PCA(2), "pca5": PCA(5)}, X[:40], X[40:])
    >>> list(table.index), bool(table.loc["pca5", "test_mse"] < 1e-12)
    (['pca2', 'pca5'], True)
    """
    try:
        import pandas as pd
    except ImportError as error:
        raise ImportError(
            "compare returns a pandas DataFrame: pip install pandas (or skae[pandas])."
        ) from error
    if not isinstance(models, dict):
        names = [_default_name(model) for model in models]
        if len(set(names)) != len(names):
            raise ValueError(
                f"models would be named {names}, with repeats: pass a dict "
                "to name them."
            )
        models = dict(zip(names, models, strict=True))
    if not models:
        raise ValueError(
            "models is empty: pass at least one transformer, e.g. "
            '{"pca": PCA(30), "ae": MLPAutoencoder(30)}.'
        )
    # Everything that can be refused is refused before any model is fitted.
    X_test_array = _complete_array(X_test, "X_test")
    if np.isnan(check_array(X_train, ensure_all_finite="allow-nan")).any():
        refusing = [
            name
            for name, model in models.items()
            if not get_tags(model).input_tags.allow_nan
        ]
        if refusing:
            raise ValueError(
                f"X_train has missing entries (NaN), which {refusing} cannot fit "
                "on: impute first (e.g. skae.AutoencoderImputer in a Pipeline), "
                "or compare only models that accept NaN, such as MLPAutoencoder "
                "with an int n_components."
            )
    rows = []
    for name, model in models.items():
        if verbose:
            print(f"fitting {name}")
        start = time.perf_counter()
        model.fit(X_train)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        code = model.transform(X_test)
        transform_seconds = time.perf_counter() - start
        start = time.perf_counter()
        X_reconstructed = model.inverse_transform(code)
        inverse_seconds = time.perf_counter() - start
        mse = float(
            np.mean(np.square(X_test_array - X_reconstructed, dtype=np.float64))
        )
        rows.append(
            {
                "name": name,
                "model": type(model).__name__,
                "n_components": _fitted_width(model),
                "test_mse": mse,
                "squared_error_per_image": mse * X_test_array.shape[1],
                "fit_seconds": fit_seconds,
                "transform_seconds": transform_seconds,
                "inverse_transform_seconds": inverse_seconds,
            }
        )
    return pd.DataFrame(rows).set_index("name")


def _ratio_standard_error(errors, reference_errors):
    """Return the standard error of mean(errors) / mean(reference_errors), paired.

    Both are per-row errors of the same rows: it is the standard error of the
    mean per-row difference, as a fraction of the reference's mean error (as
    a fit's own test against PCA measures it). NaN on one row.
    """
    difference = np.asarray(errors, float) - np.asarray(reference_errors, float)
    if len(difference) < 2:
        return float("nan")
    spread = np.std(difference, ddof=1) / np.sqrt(len(difference))
    return float(spread / np.mean(reference_errors))


def _fitted_width(model):
    """Return the width a fitted reducer (or a pipeline's last step) kept."""
    if hasattr(model, "steps"):
        model = model.steps[-1][1]
    # The width fitted: a fraction of the variance resolved.
    return getattr(model, "n_components_", getattr(model, "n_components", None))


def _complete_array(X, name):
    """Return X validated as a float array, refusing missing entries clearly."""
    X = check_array(
        X,
        dtype=[np.float64, np.float32],
        ensure_all_finite="allow-nan",
        input_name=name,
    )
    if np.isnan(X).any():
        raise ValueError(
            f"{name} has missing entries (NaN): a reconstruction error needs "
            "every entry observed. Score the observed entries with "
            "MLPAutoencoder.score (it skips missing entries), or impute first "
            "(e.g. skae.AutoencoderImputer)."
        )
    return X


def _default_name(model):
    """Name a model by its class and n_components, e.g. 'PCA(n_components=30)'."""
    n_components = getattr(model, "n_components", None)
    suffix = "" if n_components is None else f"(n_components={n_components})"
    return type(model).__name__ + suffix
