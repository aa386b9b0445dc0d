"""AutoencoderImputer: fill missing entries with an autoencoder's reconstruction."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context, clone
from sklearn.impute import MissingIndicator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_is_fitted,
    validate_data,
)

from skae._autoencoder import MLPAutoencoder

# Choosing the completion rounds: the fraction of observed entries hidden, in
# at most this many rows, and the most rounds tried.
HIDDEN_FRACTION = 0.1
PROBE_ROWS = 2000
MAX_ROUNDS = 3


class AutoencoderImputer(TransformerMixin, BaseEstimator):
    """Impute missing values with the reconstruction of an MLPAutoencoder.

    `fit` trains an `MLPAutoencoder` on the rows of X with their missing
    entries, scoring only the observed ones and hiding a further fraction of
    them from the encoder at every step, so that the model learns to predict
    hidden entries from the others. `transform` replaces each missing entry by
    the model's reconstruction of its row; observed entries are returned
    unchanged, as with :class:`~sklearn.impute.SimpleImputer`.

    Parameters
    ----------
    n_components : int, default=None
        Width of the autoencoder's code; None means a quarter of n_features,
        at least 1 and at most 50. Ignored when ``autoencoder`` is given. The
        best width depends on the data (bench/impute.py): try a few with
        `GridSearchCV` on a score of your own, or on hidden entries.

    autoencoder : MLPAutoencoder, default=None
        The model to fit (cloned, never changed); None means
        ``MLPAutoencoder(n_components, max_iter=10)``: on 5,000 Fashion-MNIST
        images with 20% missing, 10 epochs imputed as well as 18.

    missing_values : float or np.nan, default=np.nan
        The placeholder of a missing value; all its occurrences are imputed.

    add_indicator : bool, default=False
        If True, a :class:`~sklearn.impute.MissingIndicator` is fitted too and
        its columns are stacked to the right of the imputed ones, as in
        scikit-learn's imputers.

    random_state : int, RandomState instance or None, default=None
        Passed to the autoencoder (overriding its own when not None).

    Attributes
    ----------
    autoencoder_ : MLPAutoencoder
        The fitted model.

    completion_rounds_ : int
        Rounds of fill, reconstruct, refill before a row is encoded
        (`MLPAutoencoder.transform` does one): the number, from 0 to 3, that
        reconstructed best a sample of observed entries hidden after `fit`.

    completion_errors_ : list of float
        The mean squared error on those hidden entries after 0 to 3 rounds.

    indicator_ : MissingIndicator or None
        The fitted indicator when ``add_indicator``, else None.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit. Defined only when X has feature
        names that are all strings.

    See Also
    --------
    sklearn.impute.SimpleImputer : Column statistics.
    sklearn.impute.KNNImputer : Averages of the nearest rows.
    sklearn.impute.IterativeImputer : One regression per feature, in rounds.

    Notes
    -----
    A feature never observed during fit is imputed with 0 (scikit-learn's
    imputers with ``keep_empty_features=True``); a row with no observed entry
    gets the reconstruction of the training rows' column means. `fit` refuses
    data whose observed entries are too few to determine a model of the
    code's width (see `MLPAutoencoder`).

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoencoderImputer
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(60, 2) @ rng.rand(2, 6)
    >>> X[::7, 3] = np.nan
    >>> X_imputed = AutoencoderImputer(n_components=2, random_state=0).fit_transform(X)
    >>> bool(np.isnan(X_imputed).any()), bool((X_imputed[1:7] == X[1:7]).all())
    (False, True)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "autoencoder": [HasMethods(["fit", "predict"]), None],
        "missing_values": [Real, None],
        "add_indicator": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        autoencoder=None,
        missing_values=np.nan,
        add_indicator=False,
        random_state=None,
    ):
        self.n_components = n_components
        self.autoencoder = autoencoder
        self.missing_values = missing_values
        self.add_indicator = add_indicator
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the autoencoder to the observed entries of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with missing values.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : AutoencoderImputer
            The fitted imputer.
        """
        X = self._validate(X, reset=True)
        autoencoder = self._autoencoder(X.shape[1]).fit(X)
        rounds, errors = _best_rounds(autoencoder, X, self.random_state)
        indicator = None
        if self.add_indicator:
            indicator = MissingIndicator(error_on_new=False).fit(X)
        # Validate, then commit: nothing is set until everything has fitted.
        self.autoencoder_ = autoencoder
        self.completion_rounds_ = rounds
        self.completion_errors_ = errors
        self.indicator_ = indicator
        return self

    def transform(self, X):
        """Replace the missing entries of X by their reconstruction.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with missing values.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features) or \
                (n_samples, n_features + n_indicators)
            X with its missing entries filled, in X's float dtype, followed by
            the indicator's columns when ``add_indicator``.
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        missing = np.isnan(X)
        X_imputed = X.copy()
        rows = missing.any(axis=1)
        if rows.any():
            reconstructed = self.autoencoder_._reconstruct(
                X[rows], self.completion_rounds_
            )
            X_imputed[rows] = np.where(missing[rows], reconstructed, X[rows])
        if self.indicator_ is not None:
            indicator = self.indicator_.transform(X).astype(X.dtype)
            X_imputed = np.hstack([X_imputed, indicator])
        return X_imputed

    def get_feature_names_out(self, input_features=None):
        """Get output feature names for transformation.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input features, as for scikit-learn's imputers.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The input features, then the indicator's when ``add_indicator``.
        """
        check_is_fitted(self, "n_features_in_")
        names = _check_feature_names_in(self, input_features)
        if self.indicator_ is None:
            return names
        return np.concatenate(
            [names, self.indicator_.get_feature_names_out(names)]
        ).astype(object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _autoencoder(self, n_features):
        """Return the unfitted autoencoder to train."""
        if self.autoencoder is not None:
            autoencoder = clone(self.autoencoder)
        else:
            width = self.n_components or min(50, max(1, n_features // 4))
            if width > n_features:
                raise ValueError(
                    f"n_components={width} must be <= n_features={n_features}."
                )
            autoencoder = MLPAutoencoder(width, max_iter=10)
        if self.random_state is not None:
            autoencoder.set_params(random_state=self.random_state)
        return autoencoder

    def _validate(self, X, reset):
        """Validate X and turn the placeholder of missing values into NaN."""
        X = validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            reset=reset,
            ensure_all_finite="allow-nan",
            copy=not _is_nan(self.missing_values),
        )
        if not _is_nan(self.missing_values):
            X[X == self.missing_values] = np.nan
        return X


def _best_rounds(autoencoder, X, random_state):
    """Return the completion rounds that best predict hidden observed entries.

    Hides HIDDEN_FRACTION of the observed entries of up to PROBE_ROWS rows and
    reconstructs them after 0 to MAX_ROUNDS rounds; returns (best, errors).
    """
    rng = check_random_state(random_state)
    rows = rng.permutation(X.shape[0])[:PROBE_ROWS]
    probe = np.array(X[rows], dtype=X.dtype)
    hidden = ~np.isnan(probe) & (rng.rand(*probe.shape) < HIDDEN_FRACTION)
    if not hidden.any():
        return 1, []
    truth = probe[hidden]
    probe[hidden] = np.nan
    errors = []
    for n_rounds in range(MAX_ROUNDS + 1):
        reconstructed = autoencoder._reconstruct(probe, n_rounds)[hidden]
        errors.append(float(np.mean(np.square(reconstructed - truth))))
    return int(np.argmin(errors)), errors


def _is_nan(value):
    """Whether `value` is NaN (the default placeholder)."""
    return isinstance(value, Real) and np.isnan(value)
