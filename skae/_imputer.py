"""AutoencoderImputer: fill missing entries with an autoencoder's reconstruction."""

import copy
import inspect
from numbers import Integral, Real

import numpy as np
import torch
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
from skae._missing import (
    column_fill,
    filled,
    linear_completion,
    low_rank_completion,
)
from skae._modules import pca_basis
from skae._trainer import TrainingDiverged
from skae._validation import check_width, rank_parameters

# Held-out entries: this fraction of the observed entries of up to PROBE_ROWS
# rows is hidden from the fit; the width, the completion rounds and the errors
# recorded are measured on them.
HIDDEN_FRACTION = 0.1
PROBE_ROWS = 2000
# The most completion rounds tried.
MAX_ROUNDS = 3
# Rows of the low-rank completions that choose the width and give the
# low-rank model.
WIDTH_ROWS = 5000
# Rounds of the width search's completions (each from the column means). On
# bench/impute.py's data at 20% missing, 5 rounds chose the widths that 10
# chose (16 on digits, 91 on 2,000 Fashion-MNIST images) in half the time;
# starting each width from the completion of a narrower one chose far wider
# codes (32 and 256), at which the autoencoder imputed worse.
SEARCH_ROUNDS = 5
# Rounds that settle a completion (see _WidthSearch.best), for the final
# choice of width and the low-rank model's axes. On 200 rows of exact rank-3
# data with 20% missing, 10 rounds cut the model's error on the hidden entries
# from 0.0017 to 0.0011 (20 rounds: 0.0009, at twice the cost); on 2,000
# Fashion-MNIST images they changed it by 0.4%.
MODEL_ROUNDS = 10
# Fill, project, refill rounds tried for the low-rank model's completion.
LOW_RANK_ROUNDS = (1, 3, 10, 30)
# The default autoencoder: trained with this denoising noise (a further fifth
# of the entries hidden from the encoder at every step, still scored), for
# about TRAINING_STEPS optimiser steps, within EPOCHS. On digits with 20%
# missing (bench/impute.py's data) the noise lowered the RMSE from 0.150 to
# 0.140 at width 16, and 150 epochs from 10 lowered it from 0.175 to 0.150.
NOISE = {"missing": 0.2}
TRAINING_STEPS = 1500
EPOCHS = (5, 150)


class AutoencoderImputer(TransformerMixin, BaseEstimator):
    """Impute missing values with the reconstruction of an MLPAutoencoder.

    `fit` first hides a tenth of the observed entries of up to 2,000 random
    rows: the model never sees them, and the width, the completion rounds and
    the errors recorded are measured on them. It then trains an
    `MLPAutoencoder` on the rows of X, scoring only their observed entries
    and, by default, hiding a further fifth of them from the encoder at every
    step (``noise={"missing": 0.2}``), so that the model learns to predict
    entries from the others. It keeps the autoencoder only if it predicts the
    hidden entries better than the low-rank model that chose its width (PCA
    fitted with missing data, completing a row by projecting it onto the
    principal axes); otherwise it keeps the low-rank model (``method_``), as
    `MLPAutoencoder` returns PCA when its network does not beat it. `transform`
    replaces each missing entry by the kept model's estimate; observed entries
    are returned unchanged, as with :class:`~sklearn.impute.SimpleImputer`.
    Ctrl-C during `fit` goes through and leaves the imputer as it was.

    Parameters
    ----------
    n_components : int, default=None
        Width of the autoencoder's code. None chooses it: the width whose
        low-rank completion (PCA with missing data, which the autoencoder
        starts as) best predicts the hidden entries, trying widths that double
        from 1 until the error rises, then the geometric middles around the
        best (``width_errors_``). Ignored when ``autoencoder`` is given.

    autoencoder : MLPAutoencoder, default=None
        The model to fit (cloned, never changed; on this process's rows
        alone, ``distributed=False``); None means
        ``MLPAutoencoder(n_components, noise={"missing": 0.2}, max_iter=...)``
        with enough epochs for about 1,500 optimiser steps, from 5 to 150:
        150 epochs on digits, 7 on 60,000 Fashion-MNIST images.

    missing_values : float or np.nan, default=np.nan
        The placeholder of a missing value; all its occurrences are imputed.

    add_indicator : bool, default=False
        If True, a :class:`~sklearn.impute.MissingIndicator` is fitted too and
        its columns are stacked to the right of the imputed ones, as in
        scikit-learn's imputers.

    random_state : int, RandomState instance or None, default=None
        Chooses the hidden entries and is passed to the autoencoder
        (overriding its own when not None).

    Attributes
    ----------
    autoencoder_ : MLPAutoencoder
        The fitted autoencoder (`transform` uses it when ``method_`` is
        "autoencoder").

    n_components_ : int
        The width of its code.

    width_errors_ : dict of int to float
        Mean squared error on the hidden entries of the low-rank completion of
        every width tried (5 rounds); empty when the width was given, or when
        no entry could be hidden. The width chosen may be wider than its
        minimum: the best and the next wider width are compared again after
        10 rounds, which wider codes need to settle.

    method_ : {"autoencoder", "low-rank"}
        The model `transform` uses: the one whose completions predicted the
        hidden entries best. Always "autoencoder" when ``autoencoder`` is
        given or no entry could be hidden.

    low_rank_ : dict or None
        The low-rank model, fitted to up to 5,000 rows at the autoencoder's
        width: ``"components"`` (its principal axes, one per row),
        ``"mean"``, and ``"errors"``, the mean squared error on the hidden
        entries after 1, 3, 10 and 30 rounds of fill, project, refill. None
        when ``autoencoder`` is given or no entry could be hidden.

    completion_rounds_ : int
        Rounds of fill, reconstruct, refill before a row is encoded (by the
        autoencoder: `MLPAutoencoder.transform` does one), or projected (by
        the low-rank model): the number that predicted the hidden entries best,
        from 0 to 3 for the autoencoder, 1, 3, 10 or 30 for the low-rank model.

    completion_errors_ : list of float
        The autoencoder's mean squared error on the hidden entries after 0 to
        3 rounds; empty when no entry could be hidden (too few observed
        entries to spare any for the model's width), when one round is used.

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
        "autoencoder": [HasMethods(["fit", "reconstruct"]), None],
        "missing_values": [Real, None],
        "add_indicator": ["boolean"],
        "random_state": ["random_state"],
    }

    def __new__(cls, *args, **kwargs):
        # A parameter of the autoencoder given to the imputer: say where it goes,
        # where Python's own TypeError would only name it.
        misplaced = sorted(
            set(kwargs)
            & set(MLPAutoencoder._get_param_names()) - set(cls._get_param_names())
        )
        if misplaced:
            name = misplaced[0]
            raise TypeError(
                f"AutoencoderImputer got an unexpected keyword argument {name!r}: "
                "it is a parameter of the autoencoder it trains. Pass your own, "
                "e.g. AutoencoderImputer(autoencoder=MLPAutoencoder(n_components, "
                f"{name}={kwargs[name]!r}, noise={{'missing': 0.2}}))."
            )
        return super().__new__(cls)

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
        # validate_data(reset=True) records X's features on the estimator it
        # is given: give it a shallow copy, as MLPAutoencoder does, so that a
        # refused X leaves a fitted imputer as it was.
        validated = copy.copy(self)
        X = validated._validate(X, reset=True)
        check_width(self.n_components, X.shape[1])
        if self.autoencoder is not None:
            check_width(getattr(self.autoencoder, "n_components", None), X.shape[1])
        rng = check_random_state(self.random_state)
        probe = _Probe.hide(X, rng)
        width_errors, low_rank = {}, None
        width = self.n_components
        if self.autoencoder is None:
            search = _WidthSearch(probe)
            if width is None:
                width, width_errors = search.best()
            autoencoder = self._autoencoder(X.shape, width)
            if probe.hidden.any() and probe.leaves_enough(width):
                unseen = np.isnan(X).all(axis=0)
                low_rank = _LowRank.fit(
                    search.completion(width, MODEL_ROUNDS), probe, unseen
                )
        else:
            autoencoder = self._autoencoder(X.shape, width)
        if not probe.leaves_enough(autoencoder.n_components):
            probe = _Probe(X, probe.rows, np.zeros((0, X.shape[1]), bool), None)
        # Ctrl-C goes through and leaves this imputer as it was: an
        # autoencoder cut short would be compared and kept as if trained, and
        # it has no resume here (it trained on rows with entries hidden).
        try:
            autoencoder._fit_as_a_step(probe.X)
        except TrainingDiverged as diverged:
            if self.autoencoder is not None:
                raise
            # Its advice names the autoencoder's parameters, not this one's.
            raise ValueError(
                f"The imputer's autoencoder diverged {diverged.cause}."
                " This imputer is left as it was. Scale X first (e.g. "
                "StandardScaler or MinMaxScaler in a Pipeline before it: on "
                "values far below unit scale, such as 1e-6, the default "
                "learning rate moves the network far more than the data "
                "varies), or pass "
                "autoencoder=MLPAutoencoder(n_components, "
                "learning_rate_init=<smaller>, noise={'missing': 0.2})."
            ) from None
        rounds, errors = _best_rounds(autoencoder, probe)
        method = "autoencoder"
        if low_rank is not None and low_rank.error < min(errors):
            method, rounds = "low-rank", low_rank.rounds
        indicator = None
        if self.add_indicator:
            indicator = MissingIndicator(error_on_new=False).fit(X)
        # Validate, then commit: nothing is set until everything has fitted.
        for name in ("n_features_in_", "feature_names_in_"):
            self.__dict__.pop(name, None)
            if name in validated.__dict__:
                setattr(self, name, validated.__dict__[name])
        self.autoencoder_ = autoencoder
        self.n_components_ = autoencoder.n_components_
        self.width_errors_ = width_errors
        self.method_ = method
        self.low_rank_ = None if low_rank is None else low_rank.attributes()
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
            if self.method_ == "low-rank":
                reconstructed = _LowRank.complete(
                    X[rows], self.low_rank_, self.completion_rounds_
                )
            else:
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

    def _autoencoder(self, shape, width):
        """Return the unfitted autoencoder to train on rows of X's shape."""
        n_samples = shape[0]
        if self.autoencoder is not None:
            autoencoder = clone(self.autoencoder)
            if "distributed" in autoencoder.get_params():
                # The imputer's choices are made on this process's rows.
                autoencoder.set_params(distributed=False)
        else:
            # The imputer's choices are made on this process's rows: so is
            # its autoencoder's training.
            autoencoder = MLPAutoencoder(
                width,
                max_iter=default_epochs(n_samples),
                noise=NOISE,
                distributed=False,
            )
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
            # As scikit-learn's imputers: only the placeholder marks a hole.
            if np.isnan(X).any():
                raise ValueError(
                    f"X contains NaN, but missing_values={self.missing_values!r} "
                    "marks the missing entries: set missing_values=np.nan to "
                    "impute NaN, or replace the NaN first."
                )
            X[X == self.missing_values] = np.nan
        return X


class _Probe:
    """Observed entries hidden from the fit, to choose and measure on.

    ``X``: the data the model is fitted to, with the hidden entries missing;
    ``rows``: the rows with hidden entries, in a random order, followed by the
    other rows; ``hidden``: the mask of the hidden entries in ``X[rows[:n]]``
    (``n = len(hidden)``); ``truth``: their values.
    """

    def __init__(self, X, rows, hidden, truth):
        self.X, self.rows, self.hidden, self.truth = X, rows, hidden, truth
        self.n_observed = int(np.count_nonzero(~np.isnan(X)))

    @classmethod
    def hide(cls, X, rng):
        """Hide HIDDEN_FRACTION of the observed entries of PROBE_ROWS random rows."""
        rows = rng.permutation(X.shape[0])
        probed = rows[:PROBE_ROWS]
        hidden = ~np.isnan(X[probed]) & (
            rng.rand(len(probed), X.shape[1]) < HIDDEN_FRACTION
        )
        X = X.copy()
        block = X[probed]
        truth = block[hidden]
        block[hidden] = np.nan
        X[probed] = block
        return cls(X, rows, hidden, truth)

    def leaves_enough(self, width):
        """Whether the entries left determine a model of `width` (if an int)."""
        if not isinstance(width, Integral):
            return True
        return self.n_observed >= rank_parameters(self.X.shape, width)

    def error(self, completed):
        """Mean squared error of `completed` (the probed rows) on the hidden entries."""
        if not self.hidden.any():
            return float("nan")
        return float(np.mean(np.square(completed[self.hidden] - self.truth)))


def default_epochs(n_samples):
    """Epochs of the default autoencoder: about TRAINING_STEPS steps, within EPOCHS."""
    steps = -(-n_samples // 256)
    return int(np.clip(-(-TRAINING_STEPS // steps), *EPOCHS))


def _widths(largest):
    """Widths to try, doubling from 1 to `largest`."""
    width = 1
    while width < largest:
        yield width
        width *= 2
    yield largest


class _WidthSearch:
    """Low-rank completions (PCA with missing data) of up to WIDTH_ROWS rows.

    The completions (`skae._missing.low_rank_completion`, SEARCH_ROUNDS
    rounds, every width starting from the axes of the rows filled with the
    column means, decomposed once) are cheap stand-ins for autoencoders,
    which start as they do.
    """

    def __init__(self, probe):
        self.probe = probe
        rows = probe.rows[:WIDTH_ROWS]
        self.data = torch.as_tensor(np.asarray(probe.X[rows], dtype=np.float32))
        self.start = None
        self.completions = {}
        self.errors = {}

    def completion(self, width, rounds=None):
        """Return (components, mean, completed rows) at `width` (SEARCH_ROUNDS)."""
        rounds = SEARCH_ROUNDS if rounds is None else rounds
        if (width, rounds) not in self.completions:
            if self.start is None:
                rows = filled(self.data, column_fill(self.data))
                self.start = pca_basis(rows, rows.shape[1], precise=False)
            self.completions[width, rounds] = low_rank_completion(
                self.data, width, rounds=rounds, precise=False, start=self.start
            )
        return self.completions[width, rounds]

    def error(self, width):
        """Mean squared error of the completion at `width` on the hidden entries."""
        if width not in self.errors:
            self.errors[width] = self._error(self.completion(width))
        return self.errors[width]

    def _error(self, completion):
        """Mean squared error of a completion's rows on the hidden entries."""
        completed = completion[2][: len(self.probe.hidden)]
        return self.probe.error(completed.double().numpy())

    def best(self):
        """Return the width whose completion best predicts the hidden entries.

        Widths double from 1 until the error rises, then the geometric middles
        around the best are tried, each SEARCH_ROUNDS rounds. Those rounds
        have not settled, the less so the wider the code: on 200 rows of exact
        rank-3 data they put width 2 ahead of 3, which 10 rounds put ahead.
        So the best width and the next wider one tried are then compared
        after MODEL_ROUNDS rounds, moving wider while that wins.
        Returns (width, {width: mean squared error after SEARCH_ROUNDS}).
        """
        probe = self.probe
        n_features = probe.X.shape[1]
        if not probe.hidden.any():
            return min(50, max(1, n_features // 4)), {}
        # The widest code whose parameters the observed entries still
        # determine (see MLPAutoencoder), and no wider than the rows of the
        # completion.
        largest = max(1, min(n_features, len(self.data) - 1))
        while largest > 1 and not probe.leaves_enough(largest):
            largest -= 1
        best = None
        for width in _widths(largest):
            if self.error(width) >= self.errors.get(best, np.inf):
                break
            best = width
        tried = sorted(self.errors)
        at = tried.index(best)
        for neighbour in tried[max(at - 1, 0) : at + 2]:
            middle = round(np.sqrt(best * neighbour))
            if 1 <= middle <= largest:
                self.error(middle)
        best = min(self.errors, key=self.errors.get)
        for wider in sorted(width for width in self.errors if width > best):
            if self._error(self.completion(wider, MODEL_ROUNDS)) >= self._error(
                self.completion(best, MODEL_ROUNDS)
            ):
                break
            best = wider
        return best, dict(sorted(self.errors.items()))


class _LowRank:
    """The low-rank model: a PCA basis fitted with missing data, and its rounds.

    It completes a row by filling its missing entries with the mean, then
    projecting onto the basis and refilling, `rounds` times (chosen from
    LOW_RANK_ROUNDS on the hidden entries; ``errors`` are theirs).
    """

    def __init__(self, components, mean, rounds, errors):
        self.components, self.mean = components, mean
        self.rounds, self.errors = rounds, errors
        self.error = errors[rounds]

    @classmethod
    def fit(cls, completion, probe, unseen):
        """Choose the rounds of a basis (components, mean, _) on the probe.

        The features never observed (`unseen`, a mask) get 0 in the axes and
        the mean: the model imputes them with exactly 0, as documented.
        """
        components, mean, _ = completion
        unseen = torch.as_tensor(unseen)
        components = torch.where(unseen, 0.0, components)
        mean = torch.where(unseen, 0.0, mean)
        rows = probe.X[probe.rows[: len(probe.hidden)]]
        attributes = {"components": components.numpy(), "mean": mean.numpy()}
        errors = {
            n_rounds: probe.error(cls.complete(rows, attributes, n_rounds))
            for n_rounds in LOW_RANK_ROUNDS
        }
        return cls(components, mean, min(errors, key=errors.get), errors)

    def attributes(self):
        """Return the fitted attributes that `complete` reads (``low_rank_``)."""
        return {
            "components": self.components.numpy(),
            "mean": self.mean.numpy(),
            "errors": dict(self.errors),
        }

    @staticmethod
    def complete(X, attributes, n_rounds):
        """Return the rows of X (float ndarray) completed by the basis."""
        components = torch.as_tensor(attributes["components"])
        mean = torch.as_tensor(attributes["mean"])
        completed = linear_completion(
            torch.as_tensor(np.asarray(X, dtype=np.float32)),
            components,
            mean,
            n_rounds,
        )
        return completed.numpy().astype(X.dtype, copy=False)


def _best_rounds(autoencoder, probe):
    """Return the completion rounds that best predict the hidden entries.

    Reconstructs the probed rows after 0 to MAX_ROUNDS rounds; returns
    (best, errors), the errors being mean squared.
    """
    if not probe.hidden.any():
        return 1, []
    rows = probe.X[probe.rows[: len(probe.hidden)]]
    errors = [
        probe.error(reconstruction)
        for reconstruction in autoencoder._reconstructions(rows, MAX_ROUNDS)
    ]
    return int(np.argmin(errors)), errors


# __new__ takes any keyword to name a misplaced one; the class's signature, which
# scikit-learn's checks and help() read, stays __init__'s.
AutoencoderImputer.__signature__ = inspect.signature(
    AutoencoderImputer.__init__
).replace(
    parameters=list(inspect.signature(AutoencoderImputer.__init__).parameters.values())[
        1:
    ]
)


def _is_nan(value):
    """Whether `value` is NaN (the default placeholder)."""
    return isinstance(value, Real) and np.isnan(value)
