"""MLPAutoencoder: the one bridge between scikit-learn and the torch code."""

import sys
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from skae._modules import ACTIVATIONS, build_autoencoder
from skae._torch_utils import make_generator, resolve_device
from skae._training import (
    LOSSES,
    SOLVERS,
    apply_in_batches,
    make_optimizer,
    train_epochs,
)

_FLOAT32_MAX = float(np.finfo(np.float32).max)


class MLPAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Multi-layer perceptron autoencoder, trained with PyTorch.

    The encoder maps ``n_features -> *hidden_layer_sizes -> n_components`` and the
    decoder mirrors it back to ``n_features``. The model is fitted to reconstruct
    its input; ``transform`` returns the code (the bottleneck activations) and
    ``inverse_transform`` decodes a code back to the input space, so the estimator
    can take the place of :class:`~sklearn.decomposition.PCA` in a pipeline.

    Computation is done in float32; results are returned in the input's float
    dtype.

    Parameters
    ----------
    n_components : int, default=2
        Width of the code (the bottleneck). Must be <= n_features.

    hidden_layer_sizes : array-like of shape (n_layers,), default=(256, 128)
        Widths of the encoder's hidden layers, from the input towards the code.
        The decoder uses them in reverse order. ``()`` gives a single linear
        layer each way.

    activation : {"relu", "gelu", "tanh", "logistic", "identity"}, default="relu"
        Activation after every hidden layer of the encoder and the decoder.

    latent_activation : {"identity", "relu", "gelu", "tanh", "logistic"}, \
            default="identity"
        Activation applied to the code.

    output_activation : {"identity", "relu", "gelu", "tanh", "logistic"}, \
            default="identity"
        Activation applied to the reconstruction. Use "logistic" for data in
        [0, 1], and with ``loss="binary_crossentropy"``.

    loss : {"squared_error", "binary_crossentropy"}, default="squared_error"
        Training loss. "squared_error" is half the mean squared error over all
        entries (the loss of MLPRegressor). "binary_crossentropy" needs
        X in [0, 1] and ``output_activation="logistic"``.

    solver : {"adam", "adamw", "sgd"}, default="adam"
        Optimizer. "sgd" uses ``momentum``.

    learning_rate_init : float, default=0.001
        Learning rate of the optimizer.

    alpha : float, default=0.0
        Strength of the L2 penalty on the weights, in MLPRegressor's form:
        ``0.5 * alpha * sum(W ** 2) / batch_size`` is added to the loss.

    batch_size : int, default=256
        Rows per optimisation step; clipped to the number of samples.

    max_iter : int, default=20
        Number of epochs (passes over the training data).

    shuffle : bool, default=True
        Whether to draw a new order of the samples at every epoch.

    momentum : float, default=0.9
        Momentum of the "sgd" solver; ignored by the others.

    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights and the shuffling, through a private torch
        generator: the global torch and NumPy random states are never used or
        changed. Pass an int for reproducible results.

    verbose : int, default=0
        0 prints nothing; 1 prints one line per epoch (loss and seconds); 2 or
        more also shows a tqdm progress bar over each epoch's batches (on stderr,
        when tqdm is installed).

    device : str, default="cpu"
        Torch device to train and infer on: "cpu", "cuda", "cuda:1", "mps", or
        "auto" (the first of cuda, mps and cpu that is available).

    callbacks : list of callable, default=None
        Each is called at the end of every epoch as ``callback(estimator,
        record)``, where ``record`` has the fields ``epoch`` (from 0),
        ``train_loss``, ``validation_loss`` and ``seconds``. The estimator can be
        used for inference inside the callback (its attributes describe the
        epochs so far). Returning True stops training.

    Attributes
    ----------
    encoder_ : torch.nn.Sequential
        The fitted encoder.

    decoder_ : torch.nn.Sequential
        The fitted decoder.

    loss_ : float
        Mean training loss over the last epoch.

    loss_curve_ : list of float
        Mean training loss of every epoch.

    n_iter_ : int
        Number of epochs run.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit. Defined only when X has feature
        names that are all strings.

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    sklearn.neural_network.MLPRegressor : Multi-layer perceptron regressor.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import MLPAutoencoder
    >>> X = np.random.RandomState(0).rand(100, 8)
    >>> ae = MLPAutoencoder(n_components=2, hidden_layer_sizes=(16,), max_iter=5,
    ...                     random_state=0).fit(X)
    >>> ae.transform(X).shape
    (100, 2)
    >>> ae.inverse_transform(ae.transform(X)).shape
    (100, 8)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "latent_activation": [StrOptions(set(ACTIVATIONS))],
        "output_activation": [StrOptions(set(ACTIVATIONS))],
        "loss": [StrOptions(set(LOSSES))],
        "solver": [StrOptions(set(SOLVERS))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [str],
        "callbacks": [list, None],
    }

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(256, 128),
        activation="relu",
        latent_activation="identity",
        output_activation="identity",
        loss="squared_error",
        solver="adam",
        learning_rate_init=0.001,
        alpha=0.0,
        batch_size=256,
        max_iter=20,
        shuffle=True,
        momentum=0.9,
        random_state=None,
        verbose=0,
        device="cpu",
        callbacks=None,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.latent_activation = latent_activation
        self.output_activation = output_activation
        self.loss = loss
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.momentum = momentum
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.callbacks = callbacks

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the autoencoder to reconstruct X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : MLPAutoencoder
            The fitted estimator.
        """
        X = self._validate_input(X, reset=True)
        hidden_layer_sizes = self._check_hidden_layer_sizes()
        self._check_fit_params(X)
        device = resolve_device(self.device)
        generator = make_generator(self.random_state)

        encoder, decoder = build_autoencoder(
            X.shape[1],
            hidden_layer_sizes,
            self.n_components,
            activation=self.activation,
            latent_activation=self.latent_activation,
            output_activation=self.output_activation,
            generator=generator,
        )
        encoder.to(device)
        decoder.to(device)
        optimizer = make_optimizer(
            [*encoder.parameters(), *decoder.parameters()],
            self.solver,
            self.learning_rate_init,
            self.momentum,
        )
        self.encoder_ = encoder
        self.decoder_ = decoder
        self.loss_curve_ = []
        self.n_iter_ = 0
        self._n_features_out = self.n_components
        self._device = device
        train_epochs(
            encoder,
            decoder,
            _to_tensor(X, device),
            optimizer=optimizer,
            n_epochs=self.max_iter,
            batch_size=min(self.batch_size, X.shape[0]),
            loss=self.loss,
            alpha=self.alpha,
            shuffle=self.shuffle,
            generator=generator,
            on_epoch_end=self._end_epoch,
            batch_progress=self._batch_progress_bar if self.verbose >= 2 else None,
        )
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
        return apply_in_batches(self.encoder_, X, device=self._device)

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
        _check_float32_range(X)
        return apply_in_batches(self.decoder_, X, device=self._device)

    def predict(self, X):
        """Reconstruct X: ``inverse_transform(transform(X))`` in one pass.

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
            ``-mean((X - predict(X)) ** 2, axis=1)``: higher is better, and
            anomalous samples score low.
        """
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        residual = X - self._reconstruct(X)
        return -np.mean(np.square(residual, dtype=np.float64), axis=1)

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
            ``-mean((X - predict(X)) ** 2)``, the mean of `score_samples`: higher
            is better, as scikit-learn's model selection expects.
        """
        return float(np.mean(self.score_samples(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _reconstruct(self, X):
        """Decode the encoding of validated X in one batched pass."""
        return apply_in_batches(
            torch.nn.Sequential(self.encoder_, self.decoder_), X, device=self._device
        )

    def _validate_input(self, X, reset):
        """Validate X against the fitted features; refuse what float32 cannot hold."""
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=reset)
        _check_float32_range(X)
        return X

    def _check_hidden_layer_sizes(self):
        """Return hidden_layer_sizes as a tuple of positive ints, or raise."""
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        for size in sizes:
            if not isinstance(size, Integral) or isinstance(size, bool) or size < 1:
                raise ValueError(
                    "hidden_layer_sizes must be positive integers, got "
                    f"hidden_layer_sizes={self.hidden_layer_sizes!r}."
                )
        return tuple(int(size) for size in sizes)

    def _check_fit_params(self, X):
        """Check the parameters that depend on the data."""
        n_features = X.shape[1]
        if self.n_components > n_features:
            raise ValueError(
                f"n_components={self.n_components} must be <= n_features={n_features}."
            )
        if self.loss == "binary_crossentropy":
            if self.output_activation != "logistic":
                raise ValueError(
                    "loss='binary_crossentropy' needs outputs in [0, 1]: set "
                    "output_activation='logistic' (got "
                    f"output_activation={self.output_activation!r})."
                )
            low, high = X.min(), X.max()
            if low < 0 or high > 1:
                raise ValueError(
                    "loss='binary_crossentropy' needs X in [0, 1], but X ranges "
                    f"over [{low:.4g}, {high:.4g}]: scale it (e.g. with "
                    "MinMaxScaler) or use loss='squared_error'."
                )

    def _end_epoch(self, record):
        """Record an epoch, report it, and ask the callbacks whether to stop."""
        self.loss_curve_.append(record.train_loss)
        self.loss_ = record.train_loss
        self.n_iter_ = record.epoch + 1
        if self.verbose:
            _print_progress_line(
                f"Epoch {record.epoch + 1}/{self.max_iter}, "
                f"loss = {record.train_loss:.6f}, {record.seconds:.2f} s"
            )
        stop = False
        for callback in self.callbacks or ():
            # Only True stops: a callback may return anything else, an array
            # included. Every callback sees the epoch, even after one asked to stop.
            stop = (callback(self, record) is True) or stop
        return stop

    def _batch_progress_bar(self, epoch, n_batches):
        """Return a tqdm bar over one epoch's batches, or a silent stand-in."""
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return _NoProgress()
        return tqdm(
            total=n_batches,
            desc=f"Epoch {epoch + 1}/{self.max_iter}",
            unit="batch",
            leave=False,
        )


class _NoProgress:
    """Stands in for a progress bar when tqdm is missing."""

    def update(self, n):
        pass

    def close(self):
        pass


def _print_progress_line(line):
    """Print a line without breaking a tqdm bar that may be on screen."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        print(line)
    else:
        tqdm.write(line, file=sys.stdout)


def _to_tensor(X, device):
    """Copy validated X into a float32 tensor on `device` for training."""
    X = np.asarray(X, dtype=np.float32)
    if not X.flags.writeable:
        # torch warns about read-only arrays (e.g. memory maps); training never
        # writes to X, but a private copy keeps the warning from reaching users.
        X = X.copy()
    return torch.from_numpy(X).to(device)


def _check_float32_range(X):
    """Raise if finite float64 X holds values that overflow float32."""
    if X.dtype == np.float64 and X.size:
        largest = max(abs(float(X.min())), abs(float(X.max())))
        if largest > _FLOAT32_MAX:
            raise ValueError(
                f"X contains values up to {largest:.3g} in magnitude, beyond the "
                f"float32 range ({_FLOAT32_MAX:.3g}) that skae computes in: "
                "rescale X, e.g. with StandardScaler."
            )
