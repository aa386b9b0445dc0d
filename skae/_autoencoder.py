"""MLPAutoencoder: the one bridge between scikit-learn and the torch code."""

import copy
import sys
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    validate_data,
)

from skae._modules import ACTIVATIONS, build_autoencoder, pca_basis
from skae._torch_utils import generator_from_state, make_generator, resolve_device
from skae._training import (
    LOSSES,
    NOISE_KINDS,
    PRECISIONS,
    SCHEDULES,
    SOLVERS,
    apply_in_batches,
    copy_state,
    evaluate,
    load_state,
    make_optimizer,
    make_scheduler,
    n_batches,
    train_epochs,
)

_FLOAT32_MAX = float(np.finfo(np.float32).max)
# hidden_layer_sizes="auto" adds a third hidden layer for codes up to this wide.
_AUTO_DEEP_MAX_COMPONENTS = 16
# A training loss this many times the cost of outputting zeros means divergence.
_EXPLODING = 1e4
# early_stopping="auto" holds out validation data from this many samples on.
_AUTO_VALIDATION_MIN = 1000


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

    hidden_layer_sizes : "auto" or array-like of shape (n_layers,), default="auto"
        Widths of the encoder's hidden layers, from the input towards the code.
        The decoder uses them in reverse order. ``()`` gives a single linear
        layer each way. "auto" is (512, 256, 128) for codes of up to 16 units
        and (512, 256) for wider ones; the fitted choice is in
        ``hidden_layer_sizes_``. On Fashion-MNIST (bench/quality.py), (512, 256)
        reached a lower test error within a minute of training than (256, 128)
        or (1024,); the third layer lowered it further at 2 and 10 components
        (0.532 -> 0.511 and 0.477 -> 0.469 of PCA's error) but raised it at 30
        and 100 (0.518 -> 0.526 and 0.630 -> 0.672).

    init : {"auto", "pca", "random"}, default="auto"
        How the model starts. "pca": the encoder and the decoder each get a
        linear path initialised from PCA of the training data, plus the MLP as a
        correction whose last layer starts at zero, so the untrained model
        reconstructs exactly as PCA does and training only improves on it. Needs
        identity latent and output activations. "random": plain MLPs with
        torch's default initialisation (the textbook model). "auto": "pca" when
        the latent and output activations are identity, else "random".

    activation : {"relu", "gelu", "tanh", "logistic", "identity"}, default="gelu"
        Activation after every hidden layer of the encoder and the decoder.
        GELU reached a slightly lower test error than ReLU in the same epochs.

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

    learning_rate : {"constant", "cosine", "one_cycle"}, default="one_cycle"
        Schedule of the learning rate over the ``max_iter`` epochs of a `fit`,
        stepped after every batch: constant at ``learning_rate_init``, cosine
        annealing from it to zero, or one-cycle (warm up to it, then anneal).
        `partial_fit` always uses ``learning_rate_init``. One-cycle is the
        default because it reached a lower test error than a constant rate in
        the same epochs (bench/quality.py).

    learning_rate_init : float, default=0.002
        Learning rate of the optimizer (the peak of a schedule). 0.002 is the
        highest peak that stayed stable at every n_components measured; 0.005
        reached lower errors with short codes but made the loss jump with 100.

    alpha : float, default=0.0
        Strength of the L2 penalty on the weights, in MLPRegressor's form:
        ``0.5 * alpha * sum(W ** 2) / batch_size`` is added to the loss.

    batch_size : int, default=256
        Rows per optimisation step; clipped to the number of samples.

    max_iter : int, default=18
        Maximum number of epochs (passes over the training data) of a `fit`:
        about a minute on 60,000 images of 784 pixels on a 2-core CPU.

    shuffle : bool, default=True
        Whether to draw a new order of the samples at every epoch.

    tol : float, default=1e-5
        Tolerance of the stopping rule: when the training loss (or, with
        ``early_stopping``, the validation score) has not improved by at least
        ``tol`` for ``n_iter_no_change`` consecutive epochs, training stops.
        MLPRegressor's rule; its default of 1e-4 is lowered because images in
        [0, 1] have losses near 0.01, where 1e-4 would stop training that still
        improves by 1% an epoch.

    n_iter_no_change : int, default=10
        Epochs without improvement tolerated by the stopping rule.

    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the training data, score it after
        every epoch, stop when the score stops improving and restore the
        weights of the best epoch. With ``init="pca"`` the untrained model
        (PCA itself) is a candidate, so the result never validates worse than
        PCA. "auto": on when there are at least 1,000 training samples, enough
        to hold out 100; off below, where every sample counts. It is the
        default because without it the autoencoder overfit small training sets
        and lost to PCA on held-out data (1,500 MNIST digits, 100 components:
        1.05 x PCA's test error).

    validation_fraction : float, default=0.1
        Fraction of the training data held out when early stopping is on.

    warm_start : bool, default=False
        When True, `fit` continues from the weights and optimizer state of the
        previous fit instead of starting afresh.

    momentum : float, default=0.9
        Momentum of the "sgd" solver; ignored by the others.

    noise : float or dict, default=None
        Corrupt the inputs, never the targets, while training: a denoising
        autoencoder. A float is the standard deviation of added Gaussian noise;
        a dict may set ``{"gaussian": std, "mask": fraction}``, where "mask"
        sets that fraction of the entries to zero. Inference is never noisy.

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

    precision : {"float32", "bfloat16"}, default="float32"
        Arithmetic of training. "bfloat16" runs the matrix products of the
        forward pass in bfloat16 under torch.autocast (weights, gradients and
        optimizer stay float32): faster on GPUs and on CPUs with native bfloat16
        (AVX512-BF16, AMX), but far slower on CPUs without it, where torch
        emulates it (140x slower than float32 on an AVX2 CPU, measured by
        bench/speed.py). Inference is always float32.

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

    hidden_layer_sizes_ : tuple of int
        The encoder's hidden widths the model was built with: the
        ``hidden_layer_sizes`` parameter, with "auto" resolved.

    loss_ : float
        Mean training loss over the last epoch.

    loss_curve_ : list of float
        Mean training loss of every epoch.

    best_loss_ : float or None
        Lowest training loss reached; None when early stopping was on.

    validation_scores_ : list of float or None
        Score (negative mean squared error) of the held-out data after every
        epoch; None unless early stopping was on.

    validation_loss_curve_ : list of float or None
        Training loss function on the held-out data after every epoch; None
        unless early stopping was on.

    best_validation_score_ : float or None
        Best of ``validation_scores_``, whose weights the model keeps; None
        unless early stopping was on.

    n_iter_ : int
        Number of epochs run, over all calls to `fit` (with warm start) and
        `partial_fit`.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
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
            StrOptions({"auto"}),
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "init": [StrOptions({"auto", "pca", "random"})],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "latent_activation": [StrOptions(set(ACTIVATIONS))],
        "output_activation": [StrOptions(set(ACTIVATIONS))],
        "loss": [StrOptions(set(LOSSES))],
        "solver": [StrOptions(set(SOLVERS))],
        "learning_rate": [StrOptions(set(SCHEDULES))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "precision": [StrOptions(set(PRECISIONS))],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "noise": [None, Interval(Real, 0, None, closed="left"), dict],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "device": [str],
        "callbacks": [list, None],
    }

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes="auto",
        init="auto",
        activation="gelu",
        latent_activation="identity",
        output_activation="identity",
        loss="squared_error",
        solver="adam",
        learning_rate="one_cycle",
        learning_rate_init=0.002,
        alpha=0.0,
        batch_size=256,
        max_iter=18,
        shuffle=True,
        tol=1e-5,
        n_iter_no_change=10,
        early_stopping="auto",
        validation_fraction=0.1,
        warm_start=False,
        momentum=0.9,
        noise=None,
        random_state=None,
        verbose=0,
        device="cpu",
        precision="float32",
        callbacks=None,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.init = init
        self.activation = activation
        self.latent_activation = latent_activation
        self.output_activation = output_activation
        self.loss = loss
        self.solver = solver
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.momentum = momentum
        self.noise = noise
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.precision = precision
        self.callbacks = callbacks

    @property
    def hidden_layer_sizes_(self):
        """The encoder's hidden widths the fitted model was built with."""
        try:
            return self._fitted_architecture["hidden_layer_sizes"]
        except AttributeError:
            raise AttributeError(
                "hidden_layer_sizes_ is set by fit; this MLPAutoencoder is not "
                "fitted yet."
            ) from None

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
            Weight of each sample's reconstruction loss; None weighs all equally.

        Returns
        -------
        self : MLPAutoencoder
            The fitted estimator.
        """
        return self._fit(X, sample_weight, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Run one epoch of optimisation over X, keeping the optimizer's state.

        The first call builds the model; later calls continue training it, so
        data larger than memory can be streamed in chunks.

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
        return self._fit(X, sample_weight, incremental=True)

    def _fit(self, X, sample_weight, incremental):
        """Validate everything, then build or continue the model and train it."""
        first_pass = not hasattr(self, "encoder_") or (
            not self.warm_start and not incremental
        )
        X, weights, noise, architecture = self._check_training_input(
            X, sample_weight, reset=first_pass
        )
        if not first_pass:
            self._check_same_architecture(architecture)
        device = resolve_device(self.device)
        validation_size = 0
        if not incremental and self._early_stopping_on(X.shape[0]):
            validation_size = self._validation_size(X.shape[0])

        if first_pass:
            generator = make_generator(self.random_state)
        else:
            generator = generator_from_state(self._rng_state)
        split_rng_state = generator.get_state()
        X_all, weights_all = _to_tensor(X, device), weights
        X_tensor, X_validation, weights = _split(
            X_all, weights, validation_size, generator
        )
        if first_pass:
            # PCA is fitted on all of X, as sklearn's PCA would be: the PCA start
            # early stopping compares against is then the PCA the user compares
            # against, even if it flatters the start on the validation rows.
            self._build(architecture, device, generator, X_all, weights_all)
        else:
            self._move_to(device)
        del X_all, weights_all
        if validation_size and first_pass:
            self.best_loss_ = None
        optimizer = self._current_optimizer()
        n_epochs = 1 if incremental else self.max_iter
        schedule = "constant" if incremental else self.learning_rate
        total_steps = n_epochs * n_batches(
            X_tensor.shape[0], min(self.batch_size, X_tensor.shape[0])
        )
        scheduler = make_scheduler(
            optimizer, schedule, self.learning_rate_init, total_steps
        )
        stopping = self._stopping_rule(validation_size > 0)
        if validation_size and not self.validation_scores_:
            self.validation_scores_ = []
            self.validation_loss_curve_ = []
        if validation_size and first_pass and architecture["init"] == "pca":
            # The PCA start is a candidate too: early stopping can then never
            # return a model that validates worse than PCA.
            _, stopping.best_score = evaluate(
                self.encoder_, self.decoder_, X_validation, self.loss
            )
            stopping.best_state = copy_state((self.encoder_, self.decoder_))
        # What `resume` needs to finish this fit if it is cut short.
        self._unfinished = None
        if not incremental:
            self._unfinished = {
                "schedule": schedule,
                "total_steps": total_steps,
                "last_epoch": self.n_iter_ + n_epochs,
                "validation_size": validation_size,
                "split_rng_state": split_rng_state,
                "scheduler": None,
                "stopping": stopping.state(),
            }
        return self._train(
            X_tensor,
            X_validation,
            weights,
            noise,
            generator=generator,
            optimizer=optimizer,
            scheduler=scheduler,
            stopping=stopping,
            n_epochs=n_epochs,
            warn_unconverged=not incremental,
        )

    def resume(self, X, sample_weight=None):
        """Finish a fit that was cut short, exactly as if it had never stopped.

        A fit interrupted with Ctrl-C, or a model loaded from a file written by
        `skae.callbacks.Checkpoint` in the middle of a fit, keeps its optimizer,
        learning-rate schedule, stopping rule and random state at the end of the
        last completed epoch. `resume` runs the remaining ``max_iter - n_iter_``
        epochs from there: on the CPU, 5 epochs, a checkpoint, and `resume` give
        the same weights, bit for bit, as 10 epochs straight.

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
        check_is_fitted(self)
        unfinished = getattr(self, "_unfinished", None)
        if unfinished is None:
            raise ValueError(
                "Nothing to resume: the last fit of this MLPAutoencoder ran to its "
                "end. To train further, set warm_start=True and call fit, or call "
                "partial_fit."
            )
        X, weights, noise, architecture = self._check_training_input(
            X, sample_weight, reset=False
        )
        self._check_same_architecture(architecture)
        validation_size = unfinished["validation_size"]
        held_out = self._validation_size(X.shape[0]) if validation_size else 0
        if held_out != validation_size:
            raise ValueError(
                "resume needs the training data of the interrupted fit: its "
                f"validation split held out {validation_size} rows, X would give "
                f"{held_out}."
            )
        self._move_to(resolve_device(self.device))
        X_tensor, X_validation, weights = _split(
            _to_tensor(X, self._device),
            weights,
            validation_size,
            generator_from_state(unfinished["split_rng_state"]),
        )
        generator = generator_from_state(self._rng_state)
        optimizer = self._current_optimizer()
        # make_scheduler resets the learning rate (and one-cycle's momentum);
        # the optimizer's saved groups put back the values of the last epoch.
        groups = copy.deepcopy(optimizer.state_dict())
        scheduler = make_scheduler(
            optimizer,
            unfinished["schedule"],
            self.learning_rate_init,
            unfinished["total_steps"],
        )
        if scheduler is not None and unfinished["scheduler"] is not None:
            scheduler.load_state_dict(unfinished["scheduler"])
        optimizer.load_state_dict(groups)
        stopping = self._stopping_rule(validation_size > 0)
        stopping.load_state(unfinished["stopping"])
        return self._train(
            X_tensor,
            X_validation,
            weights,
            noise,
            generator=generator,
            optimizer=optimizer,
            scheduler=scheduler,
            stopping=stopping,
            n_epochs=unfinished["last_epoch"] - self.n_iter_,
            warn_unconverged=True,
        )

    def _check_training_input(self, X, sample_weight, reset):
        """Validate X, the sample weights and the parameters before training."""
        # validate_data(reset=True) records the features of X before it checks
        # the values: put a fitted model's back if X turns out to be bad.
        kept = {
            name: getattr(self, name)
            for name in ("n_features_in_", "feature_names_in_")
            if hasattr(self, name)
        }
        try:
            X = self._validate_input(X, reset=reset)
        except Exception:
            for name in ("n_features_in_", "feature_names_in_"):
                if name in kept:
                    setattr(self, name, kept[name])
                elif hasattr(self, name):
                    delattr(self, name)
            raise
        weights = None
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float32, ensure_non_negative=True
            )
            weights = torch.from_numpy(sample_weight)
        hidden_layer_sizes = self._check_hidden_layer_sizes()
        noise = self._check_noise()
        self._check_fit_params(X)
        return X, weights, noise, self._architecture(X.shape[1], hidden_layer_sizes)

    def _train(
        self,
        X,
        X_validation,
        weights,
        noise,
        *,
        generator,
        optimizer,
        scheduler,
        stopping,
        n_epochs,
        warn_unconverged,
    ):
        """Run the epochs; on Ctrl-C or divergence, go back to the last good epoch."""
        if weights is not None:
            weights = (weights / weights.mean()).to(self._device)
        if X_validation is None and self.best_loss_ is None:
            self.best_loss_ = np.inf
        # Live during training, for _end_epoch and for callbacks such as Checkpoint.
        self._generator = generator
        self._scheduler = scheduler
        self._stopping = stopping
        # A model that outputs zeros loses 0.5 * mean(X ** 2): the yardstick for
        # an exploding loss, whatever the scale of X.
        self._loss_scale = max(0.5 * float(X.square().mean()), 1e-30)
        self._snapshot = self._take_snapshot()
        try:
            train_epochs(
                self.encoder_,
                self.decoder_,
                X,
                optimizer=optimizer,
                n_epochs=n_epochs,
                batch_size=min(self.batch_size, X.shape[0]),
                loss=self.loss,
                alpha=self.alpha,
                shuffle=self.shuffle,
                generator=generator,
                sample_weight=weights,
                X_validation=X_validation,
                noise=noise,
                scheduler=scheduler,
                first_epoch=self.n_iter_,
                on_epoch_end=self._end_epoch,
                batch_progress=self._batch_progress_bar if self.verbose >= 2 else None,
                precision=self.precision,
            )
            finished = True
        except KeyboardInterrupt:
            # As MLPRegressor: keep what was learnt, but only whole epochs.
            self._restore_snapshot()
            warnings.warn(
                "Training interrupted by user. The model keeps the weights of "
                f"epoch {self.n_iter_}; call resume(X) to finish the fit.",
                UserWarning,
                stacklevel=3,
            )
            finished = False
        except _Diverged as diverged:
            self._restore_snapshot()
            raise ValueError(
                f"Training diverged at epoch {diverged.epoch + 1}: {diverged.reason}. "
                f"The model keeps the weights of epoch {self.n_iter_}, the last "
                "finite ones. Scale X (e.g. StandardScaler, or divide pixels by "
                f"255) or lower learning_rate_init (now {self.learning_rate_init})."
            ) from None
        finally:
            del self._generator, self._scheduler, self._stopping
            del self._snapshot, self._loss_scale
        if stopping.early_stopping and stopping.best_state is not None:
            load_state((self.encoder_, self.decoder_), stopping.best_state)
        if stopping.early_stopping:
            self.best_validation_score_ = stopping.best_score
        if finished:
            self._unfinished = None
        if finished and warn_unconverged and not stopping.stopped:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                "reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _stopping_rule(self, validating):
        """Return a fresh stopping rule on the validation score or training loss."""
        return _StoppingRule(
            early_stopping=validating,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            modules=(self.encoder_, self.decoder_),
        )

    def _take_snapshot(self):
        """Copy what an epoch changes in place: weights and optimizer state."""
        return {
            "modules": copy_state((self.encoder_, self.decoder_)),
            "optimizer": copy.deepcopy(self._optimizer.state_dict()),
        }

    def _restore_snapshot(self):
        """Go back to the weights and optimizer state of the last whole epoch."""
        load_state((self.encoder_, self.decoder_), self._snapshot["modules"])
        self._optimizer.load_state_dict(self._snapshot["optimizer"])

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
        from skae._persistence import save_model

        save_model(self, path)
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
        if X is None:
            raise TypeError(
                "X is None; expected an array-like of shape (n_samples, n_features)."
            )
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=reset)
        _check_float32_range(X)
        return X

    def _check_hidden_layer_sizes(self):
        """Return hidden_layer_sizes as a tuple of positive ints, or raise."""
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, str) and sizes == "auto":
            if self.n_components <= _AUTO_DEEP_MAX_COMPONENTS:
                return (512, 256, 128)
            return (512, 256)
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
        if self.init == "pca" and not (
            self.latent_activation == self.output_activation == "identity"
        ):
            raise ValueError(
                "init='pca' starts the model as PCA, which needs "
                "latent_activation='identity' and output_activation='identity' "
                f"(got {self.latent_activation!r} and {self.output_activation!r}); "
                "use init='random' or init='auto'."
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
        """Record an epoch, report it, apply the stopping rule and the callbacks."""
        self._check_finite(record)
        self.loss_curve_.append(record.train_loss)
        self.loss_ = record.train_loss
        self.n_iter_ = record.epoch + 1
        if record.validation_score is not None:
            self.validation_scores_.append(record.validation_score)
            self.validation_loss_curve_.append(record.validation_loss)
        else:
            self.best_loss_ = min(self.best_loss_, record.train_loss)
        if self.verbose:
            validation = (
                ""
                if record.validation_loss is None
                else f", validation loss = {record.validation_loss:.6f}"
            )
            _print_progress_line(
                f"Epoch {record.epoch + 1}, loss = {record.train_loss:.6f}"
                f"{validation}, {record.seconds:.2f} s"
            )
        stop = self._stopping.update(record)
        if stop and self.verbose:
            _print_progress_line(self._stopping.message)
        # The state at this epoch's end: where Ctrl-C falls back to, what a
        # Checkpoint callback saves, and where resume starts from.
        self._rng_state = self._generator.get_state()
        if self._unfinished is not None:
            self._unfinished["stopping"] = self._stopping.state()
            if self._scheduler is not None:
                self._unfinished["scheduler"] = self._scheduler.state_dict()
        self._snapshot = self._take_snapshot()
        for callback in self.callbacks or ():
            # Only True stops: a callback may return anything else, an array
            # included. Every callback sees the epoch, even after one asked to stop.
            stop = (callback(self, record) is True) or stop
        return stop

    def _check_finite(self, record):
        """Raise _Diverged if the loss or the weights are not finite, or exploding."""
        reason = None
        if not np.isfinite(record.train_loss):
            reason = f"the training loss is {record.train_loss}"
        elif record.train_loss > _EXPLODING * self._loss_scale:
            reason = (
                f"the training loss reached {record.train_loss:.4g}, more than "
                f"{_EXPLODING:.0e} times what a model that outputs zeros would "
                "lose"
            )
        elif not all(
            bool(torch.isfinite(parameter).all())
            for module in (self.encoder_, self.decoder_)
            for parameter in module.parameters()
        ):
            reason = "the weights are no longer finite"
        if reason is not None:
            raise _Diverged(record.epoch, reason)

    def _architecture(self, n_features, hidden_layer_sizes):
        """Return what must stay the same for training to continue."""
        return {
            "n_features": n_features,
            "hidden_layer_sizes": hidden_layer_sizes,
            "n_components": self.n_components,
            "activation": self.activation,
            "latent_activation": self.latent_activation,
            "output_activation": self.output_activation,
            "init": self._resolved_init(),
        }

    def _resolved_init(self):
        """Return "pca" or "random", resolving "auto"."""
        identity = self.latent_activation == self.output_activation == "identity"
        if self.init == "auto":
            return "pca" if identity else "random"
        return self.init

    def _check_same_architecture(self, architecture):
        """Refuse to continue training a model whose shape has changed."""
        for name, value in architecture.items():
            fitted = self._fitted_architecture[name]
            if value != fitted and name != "n_features":
                raise ValueError(
                    f"{name}={value!r} differs from {fitted!r}, the value the model "
                    "was built with: continuing training (warm_start=True or "
                    "partial_fit) needs the same architecture. Use fit with "
                    "warm_start=False to start afresh."
                )

    def _build(self, architecture, device, generator, X, sample_weight):
        """Create fresh modules, optimizer and fitted attributes."""
        pca = None
        if architecture["init"] == "pca":
            pca = pca_basis(X, architecture["n_components"], sample_weight)
            pca = tuple(tensor.cpu() for tensor in pca)
        encoder, decoder = build_autoencoder(
            architecture["n_features"],
            architecture["hidden_layer_sizes"],
            architecture["n_components"],
            activation=architecture["activation"],
            latent_activation=architecture["latent_activation"],
            output_activation=architecture["output_activation"],
            generator=generator,
            pca=pca,
        )
        self.encoder_ = encoder.to(device)
        self.decoder_ = decoder.to(device)
        self._device = device
        self._fitted_architecture = architecture
        self._n_features_out = architecture["n_components"]
        self._optimizer = None
        self.loss_curve_ = []
        self.n_iter_ = 0
        self.best_loss_ = np.inf
        self.validation_scores_ = None
        self.validation_loss_curve_ = None
        self.best_validation_score_ = None

    def _current_optimizer(self):
        """Return the optimizer to continue with: the kept one, or a fresh one."""
        optimizer = getattr(self, "_optimizer", None)
        if optimizer is None or self._optimizer_solver != self.solver:
            optimizer = self._new_optimizer(self.solver)
        if self.solver == "sgd":
            for group in optimizer.param_groups:
                group["momentum"] = self.momentum
        self._optimizer = optimizer
        self._optimizer_solver = self.solver
        return optimizer

    def _new_optimizer(self, solver):
        """Return a fresh `solver` optimizer over the weights of both modules."""
        return make_optimizer(
            [*self.encoder_.parameters(), *self.decoder_.parameters()],
            solver,
            self.learning_rate_init,
            self.momentum,
        )

    def _move_to(self, device):
        """Move the modules, and the optimizer's state with them, to `device`."""
        if device == self._device:
            return
        state = None if self._optimizer is None else self._optimizer.state_dict()
        self.encoder_.to(device)
        self.decoder_.to(device)
        self._device = device
        if state is not None:
            self._optimizer = self._new_optimizer(self._optimizer_solver)
            # load_state_dict moves the state to the parameters' device.
            self._optimizer.load_state_dict(state)

    def _early_stopping_on(self, n_samples):
        """Resolve early_stopping="auto": on from _AUTO_VALIDATION_MIN samples."""
        if self.early_stopping == "auto":
            return n_samples >= _AUTO_VALIDATION_MIN
        return bool(self.early_stopping)

    def _validation_size(self, n_samples):
        """Return the number of rows held out for early stopping, or raise."""
        size = int(np.ceil(self.validation_fraction * n_samples))
        if size < 1 or n_samples - size < 1:
            raise ValueError(
                f"early_stopping=True with validation_fraction="
                f"{self.validation_fraction} needs at least one training and one "
                f"validation sample; got n_samples={n_samples}."
            )
        return size

    def _check_noise(self):
        """Return the noise parameter as a dict (empty for none), or raise."""
        noise = self.noise
        if noise is None:
            return {}
        if not isinstance(noise, dict):
            noise = {"gaussian": float(noise)}
        unknown = set(noise) - set(NOISE_KINDS)
        if unknown:
            raise ValueError(
                f"noise={self.noise!r} has unknown keys {sorted(unknown)}; use "
                f"{NOISE_KINDS}."
            )
        gaussian = noise.get("gaussian", 0.0)
        mask = noise.get("mask", 0.0)
        if not isinstance(gaussian, Real) or not gaussian >= 0:
            raise ValueError(f"noise['gaussian']={gaussian!r} must be a float >= 0.")
        if not isinstance(mask, Real) or not 0 <= mask < 1:
            raise ValueError(f"noise['mask']={mask!r} must be in [0, 1).")
        return {kind: float(value) for kind, value in noise.items() if value}

    def __getstate__(self):
        state = super().__getstate__()
        if "encoder_" in state:
            # Pickle on the CPU, so that a model fitted on a GPU loads anywhere;
            # the optimizer travels as its state dict.
            state["encoder_"] = _on_cpu(self.encoder_)
            state["decoder_"] = _on_cpu(self.decoder_)
            if state.get("_unfinished"):
                state["_unfinished"] = _tensors_on_cpu(state["_unfinished"])
            optimizer = state.pop("_optimizer", None)
            if optimizer is not None:
                state["_optimizer_state"] = _tensors_on_cpu(optimizer.state_dict())
        return state

    def __setstate__(self, state):
        optimizer_state = state.pop("_optimizer_state", None)
        super().__setstate__(state)
        if "encoder_" not in state:
            return
        device = self._device
        if not _device_available(device):
            warnings.warn(
                f"This MLPAutoencoder was fitted on {device}, which is not "
                "available here: its weights are mapped to the CPU.",
                UserWarning,
                stacklevel=2,
            )
            device = torch.device("cpu")
        self.encoder_.to(device)
        self.decoder_.to(device)
        self._device = device
        if optimizer_state is not None:
            self._optimizer = self._new_optimizer(self._optimizer_solver)
            self._optimizer.load_state_dict(optimizer_state)

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


class _StoppingRule:
    """MLPRegressor's stopping rule, and the best weights under early stopping."""

    def __init__(self, early_stopping, tol, n_iter_no_change, modules):
        self.early_stopping = early_stopping
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.modules = modules
        self.best_score = -np.inf
        self.best_loss = np.inf
        self.best_state = None
        self.no_improvement = 0
        self.stopped = False
        self.message = ""

    def state(self):
        """Return the counters (and best weights) that `load_state` restores."""
        return {
            "best_score": self.best_score,
            "best_loss": self.best_loss,
            "no_improvement": self.no_improvement,
            "best_state": self.best_state,
        }

    def load_state(self, state):
        """Continue from the counters of an earlier run's `state`."""
        self.best_score = state["best_score"]
        self.best_loss = state["best_loss"]
        self.no_improvement = state["no_improvement"]
        self.best_state = state["best_state"]

    def update(self, record):
        """Take one epoch's record; return True when training should stop."""
        if self.early_stopping:
            score = record.validation_score
            improved = score >= self.best_score + self.tol
            if score > self.best_score:
                self.best_score = score
                self.best_state = copy_state(self.modules)
        else:
            improved = record.train_loss <= self.best_loss - self.tol
            self.best_loss = min(self.best_loss, record.train_loss)
        self.no_improvement = 0 if improved else self.no_improvement + 1
        if self.no_improvement > self.n_iter_no_change:
            quantity = "Validation score" if self.early_stopping else "Training loss"
            self.message = (
                f"{quantity} did not improve more than tol={self.tol} for "
                f"{self.n_iter_no_change} consecutive epochs. Stopping."
            )
            self.stopped = True
        return self.stopped


class _Diverged(Exception):
    """Raised from the epoch callback when training has blown up."""

    def __init__(self, epoch, reason):
        super().__init__(reason)
        self.epoch = epoch
        self.reason = reason


def _split(X, weights, validation_size, generator):
    """Hold out `validation_size` random rows of X: (X_train, X_validation, weights)."""
    if not validation_size:
        return X, None, weights
    order = torch.randperm(X.shape[0], generator=generator)
    keep = order[validation_size:]
    if weights is not None:
        weights = weights[keep]
    device_order = order.to(X.device)
    return X[device_order[validation_size:]], X[device_order[:validation_size]], weights


def _on_cpu(module):
    """Return the module itself when it is on the CPU, else a CPU copy."""
    parameter = next(module.parameters(), None)
    if parameter is None or parameter.device.type == "cpu":
        return module
    return copy.deepcopy(module).to("cpu")


def _tensors_on_cpu(value):
    """Copy a nested structure of dicts and lists with every tensor on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {key: _tensors_on_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_tensors_on_cpu(item) for item in value)
    return value


def _device_available(device):
    """Whether tensors can be placed on `device` on this machine."""
    if device.type == "cuda":
        return torch.cuda.is_available()
    if device.type == "mps":
        return torch.backends.mps.is_available()
    return True


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
