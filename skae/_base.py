"""The scikit-learn face of an autoencoder trained by `skae._trainer`.

`BaseAutoencoder` holds what does not depend on the network: fit, partial_fit
and resume (validate into locals, build a `FitConfig`, hand it to the trainer,
publish what comes back), the transformer methods, files and pickles. A model
family subclasses it with its parameters, their docs and `_fit_config`.
"""

import math
import time
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator as _SklearnEstimator
from sklearn.base import (
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils.validation import (
    check_array,
    check_is_fitted,
    validate_data,
)

import skae._distributed as _distributed
from skae._crossval import applies as cross_validation_applies
from skae._crossval import cross_validated_fit
from skae._missing import EveryRound, ObservedEncoder, reconstructor
from skae._persistence import read_fitted, save_model, written_fitted
from skae._rows import RowSource
from skae._sizing import (
    check_known_width,
    is_fraction,
    search_width,
)
from skae._sparse import dense_batches
from skae._trainer import Callbacks, Trainer
from skae._training import apply_in_batches
from skae._validation import (
    check_finite_output,
    check_float32_range,
    check_missing,
    check_sparse_complete,
    check_trainable_range,
    check_weights,
    check_width,
)
from skae._variance import measured_explained_variance


class BaseAutoencoder(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, _SklearnEstimator
):
    """Base class of skae's autoencoders; use `skae.MLPAutoencoder`."""

    @property
    def n_components_(self):
        """The width of the fitted model's code."""
        state = self.__dict__.get("_state")
        if state is None:
            raise AttributeError(
                "n_components_ is set by fit; this "
                f"{type(self).__name__} is not fitted yet."
            )
        return state.architecture["n_components"]

    @property
    def _device(self):
        """The torch device the fitted model lives on."""
        return self._state.device

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the autoencoder to reconstruct X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.

        y : None
            Ignored; present for API consistency.

        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample's reconstruction loss (and, with early
            stopping, of each held-out sample's score); None weighs all equally.

        Returns
        -------
        self : MLPAutoencoder
            The fitted estimator.
        """
        started = time.perf_counter()
        with _distributed.across_ranks(self.distributed) as group:
            return self._fit(X, sample_weight, started, group)

    def _fit_as_a_step(self, X):
        """`fit` on this process, as one step of a caller's own fit.

        Ctrl-C leaves this estimator as it was and goes through, for the
        caller to stay as it was too: an interrupted step keeps nothing that
        `resume` could finish (AutoencoderImputer trains its autoencoder so).
        """
        self._validate_params()
        return self._fit(X, None, time.perf_counter(), None, on_interrupt="raise")

    def _fit(self, X, sample_weight, started, group, on_interrupt="keep"):
        """Fit, across the ranks of `group` (None: on this process alone).

        `on_interrupt`: "raise" lets Ctrl-C through with this estimator as it
        was (see `skae._trainer.Trainer`); a width search always does.
        """
        if is_fraction(self.n_components):
            if group is not None:
                raise ValueError(
                    f"n_components={self.n_components!r} searches the width, "
                    "which a fit across ranks does not do: choose the width "
                    "with a fit on one process (on a sample of the rows), then "
                    "train across the ranks with n_components=<that width>."
                )
            if self.warm_start and "_state" in self.__dict__:
                raise ValueError(
                    "warm_start=True continues training a model of a known width, "
                    f"but n_components={self.n_components!r} searches the width "
                    f"afresh. Set n_components={self.n_components_} (the width "
                    "found) to continue, or warm_start=False to search again."
                )
            config, rows, callbacks = self._prepare(X, sample_weight, reset=True)
            state, explained, record = search_width(config, rows, callbacks, started)
            # The search's seconds, every width tried, are what this fit took.
            state.history.fit_time = time.perf_counter() - started
            # Commit: the chosen width's state becomes the estimator's.
            callbacks.publish(state)
            self._publish_sizing(explained, record)
            return self
        previous = self.__dict__.get("_state") if self.warm_start else None
        config, rows, callbacks = self._prepare(
            X, sample_weight, reset=previous is None
        )
        if cross_validation_applies(config, rows, previous):
            state = cross_validated_fit(config, rows, callbacks, started, on_interrupt)
        else:
            trainer = Trainer(config, callbacks, started, on_interrupt=on_interrupt)
            state = trainer.fit(rows, previous)
        self._publish_measured(state, config, rows)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Run one epoch of optimisation over X, keeping the optimizer's state.

        The first call builds the model; later calls continue training it, so
        data larger than memory can be streamed in chunks. As with
        MLPRegressor, early stopping is not available here.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training data.

        y : None
            Ignored; present for API consistency.

        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample's reconstruction loss; None weighs all equally.

        Returns
        -------
        self : MLPAutoencoder
            The updated estimator.
        """
        check_known_width(self, "partial_fit")
        started = time.perf_counter()
        previous = self.__dict__.get("_state")
        config, rows, callbacks = self._prepare(
            X, sample_weight, reset=previous is None
        )
        with _distributed.across_ranks(self.distributed):
            Trainer(config, callbacks, started).fit(rows, previous, incremental=True)
            self._publish_sizing(None, None)
        return self

    def resume(self, X, sample_weight=None):
        """Finish a fit that was cut short, exactly as if it had never stopped.

        A fit interrupted with Ctrl-C, or a model loaded from a file written by
        `skae.callbacks.Checkpoint` in the middle of a fit, keeps its weights,
        optimizer, learning-rate schedule, stopping rule with its best weights,
        validation split and random state at the end of the last completed
        epoch. `resume` runs the remaining ``max_iter - n_iter_`` epochs from
        there: on the CPU, 5 epochs, a checkpoint, and `resume` give the same
        weights, bit for bit, as 10 epochs straight, with any parameters.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The same training data as the interrupted fit.

        sample_weight : array-like of shape (n_samples,), default=None
            The same sample weights as the interrupted fit.

        Returns
        -------
        self : MLPAutoencoder
            The fitted estimator.
        """
        started = time.perf_counter()
        check_is_fitted(self)
        check_known_width(self, "resume")
        if not self._state.unfinished:
            raise ValueError(
                f"Nothing to resume: the last fit of this {type(self).__name__} "
                "ran to its end. To train further, set warm_start=True and call "
                "fit, or call partial_fit."
            )
        config, rows, callbacks = self._prepare(X, sample_weight, reset=False)
        with _distributed.across_ranks(self.distributed):
            state = Trainer(config, callbacks, started).resume(rows, self._state)
            self._publish_measured(state, config, rows)
        return self

    def _prepare(self, X, sample_weight, reset):
        """Validate X, the weights and the parameters into (config, rows, callbacks).

        Nothing changes on the estimator: validate_data(reset=True) records X's
        features on the estimator it is given, so a fit that starts afresh
        gives it a shallow copy, and a refused call leaves none.
        """
        probe = self
        if reset:
            probe = type(self).__new__(type(self))
            probe.__dict__.update(
                {k: v for k, v in self.__dict__.items() if not _is_fitted(k)}
            )
        X = probe._validate_input(X, reset=reset)
        # Before the missing entries: a code wider than X is the first thing
        # to say, whatever else the rows lack.
        check_width(self.n_components, X.shape[1])
        missing = check_missing(self, X, first_fit=reset)
        check_trainable_range(X)
        weights = None
        if sample_weight is not None:
            weights = torch.from_numpy(check_weights(sample_weight, X))
        config = self._fit_config(X)
        rows = RowSource(X, weights, missing)
        return config, rows, _EstimatorCallbacks(self, probe._features())

    def _publish(self, state, features):
        """Set the fitted attributes from `state`: the one place they are written.

        The modules are those to infer with: during a fit with early stopping,
        or one cut short, the best epoch's so far, as a copy, a file or a
        pickle of the estimator would have them.
        """
        history = state.history
        encoder, decoder = state.inference_modules()
        for name in ("feature_names_in_", "loss_"):
            self.__dict__.pop(name, None)
        self.__dict__.update(features)
        self._state = state
        self._n_features_out = state.architecture["n_components"]
        self.encoder_ = encoder
        self.decoder_ = decoder
        self.n_iter_ = history.n_iter
        self.loss_curve_ = list(history.loss_curve)
        if history.loss_curve:
            self.loss_ = history.loss_curve[-1]
        self.best_loss_ = history.best_loss
        self.validation_scores_ = _copied(history.validation_scores)
        self.validation_loss_curve_ = _copied(history.validation_loss_curve)
        self.best_validation_score_ = history.best_validation_score
        self.fit_time_ = history.fit_time
        self.precision_ = history.precision

    def _publish_sizing(self, explained_variance, search):
        """Set the fitted attributes of the width search and the explained variance."""
        self.explained_variance_score_ = explained_variance
        self.n_components_search_ = search

    def _publish_measured(self, state, config, rows):
        """Measure the explained variance of the model just fitted; publish it."""
        explained = measured_explained_variance(
            state, config, rows.X, rows.weights(), complete=not rows.missing
        )
        self._publish_sizing(explained, None)

    def _fitted_attributes(self):
        """Return every fitted attribute, to put back with `_restore_attributes`."""
        return {
            name: value for name, value in self.__dict__.items() if _is_fitted(name)
        }

    def _restore_attributes(self, attributes):
        """Make the fitted attributes exactly `attributes` again."""
        for name in [name for name in self.__dict__ if _is_fitted(name)]:
            del self.__dict__[name]
        self.__dict__.update(attributes)

    def save(self, path):
        """Write the model to `path` in skae's safe file format.

        The file is a safetensors file: the weights, the optimizer's state and
        JSON metadata (class, parameters, fitted attributes, versions). Loading it
        with `skae.load` never executes code, unlike pickle. The write is atomic:
        the file at `path` is replaced only once the new one is complete.

        Parameters
        ----------
        path : str or os.PathLike
            Where to write; an existing file is replaced.

        Returns
        -------
        self : MLPAutoencoder
            The estimator, unchanged.
        """
        save_model(self, path)
        return self

    def to_onnx(self, path=None, *, part="encoder", X_sample=None, target_opset=None):
        """Export the fitted model to ONNX for onnxruntime; see `skae.onnx.to_onnx`.

        Needs the ``onnx`` extra. Importing it also registers skae's converter
        with skl2onnx, so that ``skl2onnx.to_onnx`` converts pipelines
        containing this estimator.

        Parameters
        ----------
        path : str or os.PathLike, default=None
            Where to write the model, atomically; None writes nothing.
        part : {"encoder", "decoder", "autoencoder"}, default="encoder"
            What the graph computes: ``transform``, ``inverse_transform`` or
            ``reconstruct``.
        X_sample : array-like of shape (n_samples, n_inputs), default=None
            Rows of the dtype the model will take (float32 or float64); None
            means float32.
        target_opset : int, default=None
            ONNX opset of the model; None lets skl2onnx choose its latest.

        Returns
        -------
        model : onnx.ModelProto
            The exported model.
        """
        from skae.onnx import to_onnx

        return to_onnx(self, X_sample, part=part, path=path, target_opset=target_opset)

    def _to_file(self):
        """Return (JSON-able fitted metadata, tensors) for `save_model`, or None."""
        if "_state" not in self.__dict__:
            return None
        return written_fitted(self._state, self.__dict__)

    def _from_file(self, metadata, tensors):
        """Become the fitted model described by `_to_file`'s output, or raise."""
        state, features, sizing, output_config = read_fitted(
            metadata, tensors, tol=self.tol, n_iter_no_change=self.n_iter_no_change
        )
        if output_config is not None:
            self._sklearn_output_config = output_config
        self._publish(state, features)
        self._publish_sizing(*sizing)
        return self

    def transform(self, X):
        """Encode X: the activations of the code layer.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        X_transformed : ndarray of shape (n_samples, n_components)
            The code, in X's float dtype.
        """
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        return check_finite_output(
            apply_in_batches(self._observed_encoder(), X, device=self._device), X
        )

    def inverse_transform(self, X):
        """Decode codes back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, as returned by `transform`.

        Returns
        -------
        X_reconstructed : ndarray of shape (n_samples, n_features)
            The decoded data, in X's float dtype.
        """
        check_is_fitted(self)
        X = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        if X.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {X.shape[1]} features, but inverse_transform expects codes "
                f"of width n_components={self._n_features_out}, as returned by "
                "transform."
            )
        check_float32_range(X)
        return check_finite_output(
            apply_in_batches(self.decoder_, X, device=self._device), X
        )

    def reconstruct(self, X):
        """Reconstruct X: ``inverse_transform(transform(X))`` in one pass.

        Named for what it does: a transformer has no ``predict``, which
        scikit-learn reserves for one prediction per sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to reconstruct.

        Returns
        -------
        X_reconstructed : ndarray of shape (n_samples, n_features)
            The reconstruction, in X's float dtype.
        """
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        return self._reconstruct(X)

    def score_samples(self, X):
        """Negative mean squared reconstruction error of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to reconstruct.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``-mean((X - reconstruct(X)) ** 2, axis=1)``: higher is better, and
            anomalous samples score low.
        """
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        scores = np.empty(X.shape[0])
        for start, stop, rows in dense_batches(X):
            squares = np.square(rows - self._reconstruct(rows), dtype=np.float64)
            if np.isnan(squares).any():
                counts = (~np.isnan(squares)).sum(axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    scores[start:stop] = -np.nansum(squares, axis=1) / counts
                scores[start:stop][counts == 0] = np.nan
            else:
                scores[start:stop] = -np.mean(squares, axis=1)
        return scores

    def score(self, X, y=None):
        """Negative mean squared reconstruction error over all entries of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to reconstruct.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            ``-mean((X - reconstruct(X)) ** 2)``, the mean of `score_samples`
            (summed exactly, so that the order of the rows does not change
            it): higher is better, as scikit-learn's model selection expects.
        """
        scores = self.score_samples(X)
        observed = ~np.isnan(scores)
        if not observed.any():
            raise ValueError(
                "X has no observed entry: all its entries are NaN, so there is "
                "no reconstruction error to score."
            )
        # An exactly rounded sum: the same score whatever the order of the rows.
        return math.fsum(scores[observed]) / int(observed.sum())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        # The width search of a fraction trains on complete, dense rows only.
        tags.input_tags.allow_nan = not is_fraction(self.n_components)
        tags.input_tags.sparse = not is_fraction(self.n_components)
        return tags

    def __getattr__(self, name):
        # Only reached for a name the instance and its class lack: the method
        # skae used to have gets its new name in the error.
        if name == "predict":
            raise AttributeError(
                f"{type(self).__name__} has no predict: as a transformer it has no "
                "prediction per sample. Use reconstruct(X) for "
                "inverse_transform(transform(X)) (what predict returned before), "
                "or score(X) / score_samples(X) for the reconstruction error."
            )
        # Anything else: the error the lookup itself gives (a property's own).
        return object.__getattribute__(self, name)

    def __getstate__(self):
        # object.__getstate__ returns the instance's own __dict__: copy it.
        state = dict(super().__getstate__())
        if "_state" in state:
            # The training state travels as CPU tensors and JSON-able metadata,
            # as in a file, so that a model fitted on a GPU unpickles anywhere;
            # the published modules are rebuilt from it.
            state["_state_file"] = (str(self._device), *self._to_file())
            for name in ("_state", "encoder_", "decoder_"):
                state.pop(name)
        return state

    def __setstate__(self, state):
        saved = state.pop("_state_file", None)
        super().__setstate__(state)
        if saved is None:
            return
        device_name, metadata, tensors = saved
        self._from_file(metadata, tensors)
        device = torch.device(device_name)
        if not _device_available(device):
            warnings.warn(
                f"This {type(self).__name__} was fitted on {device}, which is not "
                "available here: its weights are mapped to the CPU.",
                UserWarning,
                stacklevel=2,
            )
            return
        self._state.to(device)
        self._publish(self._state, self._features())

    def _features(self):
        """Return the recorded input features, as `_publish` takes them."""
        return {
            name: self.__dict__[name]
            for name in ("n_features_in_", "feature_names_in_")
            if name in self.__dict__
        }

    def _observed_encoder(self, n_rounds=None):
        """Return the encoder of rows with missing entries (`skae._missing`)."""
        return ObservedEncoder(
            self.encoder_, self.decoder_, self._state.inference_fill(), n_rounds
        )

    def _reconstruct(self, X, n_rounds=None):
        """Decode the encoding of validated X in one batched pass."""
        autoencoder = reconstructor(
            self.encoder_, self.decoder_, self._state.inference_fill(), n_rounds
        )
        return check_finite_output(
            apply_in_batches(autoencoder, X, device=self._device), X
        )

    def _reconstructions(self, X, max_rounds):
        """Return `_reconstruct(X, n)` for n = 0 to `max_rounds`, from one pass."""
        every = EveryRound(
            self.encoder_, self.decoder_, self._state.inference_fill(), max_rounds
        )
        stacked = check_finite_output(
            apply_in_batches(every, X, device=self._device), X
        )
        return np.split(stacked, max_rounds + 1, axis=1)

    def _validate_input(self, X, reset):
        """Validate X against the fitted features; refuse what float32 cannot hold."""
        if X is None:
            raise TypeError(
                "X is None; expected an array-like of shape (n_samples, n_features)."
            )
        X = validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            reset=reset,
            accept_sparse=("csr", "csc"),
            ensure_all_finite="allow-nan",
        )
        check_sparse_complete(X)
        check_float32_range(X)
        return X


class _EstimatorCallbacks(Callbacks):
    """The estimator's side of a training run: publishing and the user's callbacks."""

    def __init__(self, estimator, features):
        self.estimator = estimator
        self.features = features

    def publish(self, state):
        """Make the estimator describe `state`."""
        self.estimator._publish(state, self.features)

    def save(self):
        """Return the fitted attributes, to put back with `restore`."""
        return self.estimator._fitted_attributes()

    def restore(self, saved):
        """Put back the fitted attributes `save` returned."""
        self.estimator._restore_attributes(saved)

    def epoch_end(self, record):
        """Run every user callback on the epoch; return whether one asked to stop.

        Only True stops: a callback may return anything else, an array
        included. Every callback sees the epoch, even after one asked to stop.
        """
        stop = False
        for callback in self.estimator.callbacks or ():
            stop = (callback(self.estimator, record) is True) or stop
        return stop


def _is_fitted(name):
    """Whether an instance attribute is fitted state (public `x_` or private)."""
    return (name.endswith("_") and not name.startswith("__")) or name in (
        "_state",
        "_n_features_out",
    )


def _copied(values):
    """Return a copy of a list, or None."""
    return None if values is None else list(values)


def _device_available(device):
    """Whether tensors can be placed on `device` on this machine."""
    if device.type == "cuda":
        return torch.cuda.is_available()
    if device.type == "mps":
        return torch.backends.mps.is_available()
    return True
