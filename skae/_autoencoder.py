"""MLPAutoencoder: the one bridge between scikit-learn and the torch code."""

import math
import time
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
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import (
    check_array,
    check_is_fitted,
    validate_data,
)

from skae._config import FitConfig
from skae._fitting import _TrainingData, fit_once, resume_fit
from skae._missing import ObservedEncoder, reconstructor
from skae._modules import ACTIVATIONS
from skae._persistence import save_model
from skae._sizing import (
    check_known_width,
    check_sizing_metadata,
    fit_by_variance,
    is_fraction,
    measured_explained_variance,
)
from skae._sparse import (
    dense_batches,
)
from skae._state import TrainingState
from skae._training import (
    LOSSES,
    PRECISIONS,
    SCHEDULES,
    SOLVERS,
    apply_in_batches,
)
from skae._validation import (
    architecture,
    check_finite_output,
    check_fit_params,
    check_float32_range,
    check_hidden_layer_sizes,
    check_missing,
    check_noise,
    check_sparse_complete,
    check_trainable_range,
    check_weights,
)


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
    n_components : int or float, default=2
        Width of the code (the bottleneck). An int must be <= n_features. A
        float in (0, 1) asks, as in PCA, for the smallest width whose
        reconstruction explains at least that fraction of the variance
        (`skae.metrics.explained_variance`) on the rows early stopping holds
        out, or on the training rows when it holds none out. `fit` then
        searches the widths up to PCA's width for the same fraction, fitting
        a model at each width it tries (see ``n_components_search_``), and
        keeps the model of the width it chooses (``n_components_``). The
        search assumes that wider codes explain more. When no width up to
        PCA's reaches the fraction, it keeps the widest tried and warns with
        the fraction reached; when it would measure on a single row, it
        refuses. `partial_fit` and
        `resume` need an int.

    hidden_layer_sizes : "auto" or array-like of shape (n_layers,), default="auto"
        Widths of the encoder's hidden layers, from the input towards the code.
        The decoder uses them in reverse order. ``()`` gives a single linear
        layer each way. "auto" is (512, 256, 128) for codes of up to 16 units
        and (512, 256) for wider ones; the fitted choice is in
        ``hidden_layer_sizes_``. On Fashion-MNIST, (512, 256) reached a lower
        test error in the same training time than (256, 128) or (1024,), and a
        third layer helped short codes but not wide ones.

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
        With a PCA start, the linear PCA paths train at a tenth of this rate:
        they start optimal, and at the full rate Adam's first steps move them
        enough to make the model validate worse than its start for epochs.

    alpha : float, default=0.0
        Strength of the L2 penalty on the weights, in MLPRegressor's form:
        ``0.5 * alpha * sum(W ** 2) / batch_size`` is added to the loss.

    batch_size : int, default=256
        Rows per optimisation step; clipped to the number of samples.

    max_iter : int, default=18
        Maximum number of epochs (passes over the training data) of a `fit`.
        bench/results/quality.json records how long 18 epochs of the default
        model take on 60,000 images of 784 pixels.

    max_time : float, default=None
        Time budget of a `fit`, in seconds, counted from the call (the
        validation of X and the PCA start included). After every epoch the fit
        divides the time left by its pace so far and re-sizes its plan and its
        learning-rate schedule to the epochs that fit in it (fewer when it runs
        slower than planned, more when faster), so that the schedule still
        ends where it should and training ends within the budget (give or
        take one epoch's variation in pace).
        ``max_iter`` stays the cap and early stopping still applies. A budget
        shorter than the first epoch trains one and warns. The epochs a budget
        affords depend on the machine and its load, so a budgeted fit is not
        reproducible bit for bit; None (the default) runs ``max_iter`` epochs.
        `resume` finishes the plan a budgeted fit made; `partial_fit` ignores
        the budget (one epoch per call). With a float ``n_components``, the
        budget is shared among the widths the search tries.

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
        Epochs without improvement tolerated by the stopping rule. Epochs in
        the warm-up of a one-cycle schedule (its first 30%) are not counted.

    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the training data, score it after
        every epoch, stop when the score stops improving and restore the
        weights of the best epoch. With ``init="pca"`` the untrained model (PCA
        of the training rows) is a candidate, and when no epoch validates better
        than it, the fit returns PCA of all the rows, as ``PCA().fit(X)`` would:
        the result never validates worse than PCA. The best epoch is kept only
        when it beats PCA of the training rows beyond noise on the held-out
        rows (paired per row, by two standard errors); otherwise the fit
        returns PCA of all the rows. "auto": on for a PCA start at any size
        (the held-out rows are what guards it against overfitting), and for a
        random start from 1,000 samples, enough to hold out 100; off where a
        side of the split would have only zero sample weights. `partial_fit`
        refuses ``True`` (as MLPRegressor does) and treats "auto" as off.

    validation_fraction : float, default=0.1
        Fraction of the training data held out when early stopping is on.

    warm_start : bool, default=False
        When True, `fit` continues from the weights, optimizer state and random
        state of the previous fit instead of starting afresh, and early
        stopping holds out the same rows (so the best of both fits is kept).
        Each fit runs its own learning-rate schedule over its ``max_iter``
        epochs: with ``learning_rate="constant"`` and ``early_stopping=False``,
        2 + 3 epochs equal 5 bit for bit; with a schedule they do not (use `resume`
        to finish a fit that was cut short).

    momentum : float, default=0.9
        Momentum of the "sgd" solver; ignored by the others.

    noise : float or dict, default=None
        Corrupt the inputs, never the targets, while training: a denoising
        autoencoder. A float is the standard deviation of added Gaussian noise;
        a dict may set ``{"gaussian": std, "mask": fraction, "missing":
        fraction}``, where "mask" sets that fraction of the entries to zero and
        "missing" hides that fraction from the encoder as missing (filled with
        the column means) while the loss still scores them, which trains the
        model to predict entries from the others (`AutoencoderImputer` uses
        0.2). Inference is never noisy.

    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the validation split and the shuffling,
        through a private torch generator. An int or a RandomState leaves the
        global torch and NumPy random states untouched; None draws one seed
        from NumPy's global random state, as scikit-learn's estimators do, so
        ``np.random.seed`` makes fits reproducible. The global torch generator
        is never used. Pass an int for reproducible results.

    verbose : int, default=0
        0 prints nothing; 1 prints one line per epoch (loss and seconds); 2 or
        more also shows a tqdm progress bar over each epoch's batches (on stderr,
        when tqdm is installed).

    device : str, default="cpu"
        Torch device to train and infer on: "cpu", "cuda", "cuda:1", "mps", or
        "auto" (the first of cuda, mps and cpu that is available).

    precision : {"float32", "bfloat16", "auto"}, default="float32"
        Arithmetic of training. "bfloat16" runs the matrix products of the
        forward pass in bfloat16 under torch.autocast (weights, gradients and
        optimizer stay float32): faster on GPUs and on CPUs with native bfloat16
        (AVX512-BF16, AMX), but far slower on CPUs without it, where torch
        emulates it (bench/speed.py measures both on the machine at hand).
        "auto" chooses bfloat16 where the device computes it natively and a
        few timed training steps of copies of the model (milliseconds, at the
        start of `fit`) are at least 10% faster in it, float32 elsewhere;
        `precision_` records the choice. As the choice rests on timings,
        "auto" is not the default: float32 keeps fits with the same
        ``random_state`` identical. Inference is always float32.

    callbacks : list of callable, default=None
        Each is called at the end of every epoch as ``callback(estimator,
        record)``, where ``record`` has the fields ``epoch`` (from 0),
        ``train_loss``, ``validation_loss`` and ``seconds``. The estimator can be
        used for inference inside the callback (its attributes describe the
        epochs so far; with early stopping its weights are the best epoch's so
        far, as a copy or a file of it would have them). Returning True stops
        training. A callback that raises ends the fit and leaves the
        estimator as it was before the call; KeyboardInterrupt keeps the epochs
        finished, as Ctrl-C does.

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
        Best validation score of the candidates, whose weights the model keeps:
        the epochs in ``validation_scores_`` and the model the fit started from
        (the PCA start, or with warm start the previous fit's best), so it may
        exceed ``max(validation_scores_)``. When a fit returns PCA because no
        epoch beat it beyond noise, it is PCA's score, which may be a little
        below that of the best epoch. None unless early stopping was on.

    n_iter_ : int
        Number of epochs run, over all calls to `fit` (with warm start) and
        `partial_fit`.

    fit_time_ : float
        Seconds the last `fit`, `partial_fit` or `resume` took to train: from
        the call until the model was final (its last epoch and, after a PCA
        start, the comparison with PCA), before ``explained_variance_score_``
        is measured; with a float ``n_components``, the whole width search.

    precision_ : {"float32", "bfloat16"}
        Arithmetic the last fit trained in: ``precision`` with "auto" resolved.

    n_components_ : int
        Width of the code: ``n_components`` when it is an int, else the width
        the search chose.

    explained_variance_score_ : float or None
        Fraction of the variance the fitted model's reconstruction explains
        (`skae.metrics.explained_variance`), measured at the end of `fit` or
        `resume` on the rows early stopping held out, else on the training
        rows. When the fit returns PCA of all the rows (no epoch beat PCA),
        that model has seen the held-out rows, so the score is measured before,
        with PCA of the training rows. It is the autoencoder's counterpart of PCA's
        ``explained_variance_ratio_.sum()``, which is measured on the training
        rows. 1.0 or 0.0 for data without variance (a perfect reconstruction
        or not); None after `partial_fit`, which holds no rows out.

    n_components_search_ : list of dict or None
        With a float ``n_components``, one entry per width the search fitted,
        in the order tried: ``n_components``, ``explained_variance`` (as
        ``explained_variance_score_``), ``n_iter`` and ``seconds``. None
        otherwise.

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
        "n_components": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="neither"),
        ],
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
        "max_time": [Interval(Real, 0, None, closed="neither"), None],
        "shuffle": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "precision": [StrOptions({*PRECISIONS, "auto"})],
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
        max_time=None,
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
        self.max_time = max_time
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
        state = self.__dict__.get("_state")
        if state is None:
            raise AttributeError(
                "hidden_layer_sizes_ is set by fit; this MLPAutoencoder is not "
                "fitted yet."
            )
        return state.architecture["hidden_layer_sizes"]

    @property
    def n_components_(self):
        """The width of the fitted model's code."""
        state = self.__dict__.get("_state")
        if state is None:
            raise AttributeError(
                "n_components_ is set by fit; this MLPAutoencoder is not fitted yet."
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
        if is_fraction(self.n_components):
            data = self._check_training_input(X, sample_weight, reset=True)
            fitted, explained, record = fit_by_variance(
                self, data, sample_weight, started
            )
            # The search's seconds, every width tried, are what this fit took.
            fitted._state.history.fit_time = time.perf_counter() - started
            # Commit: the chosen clone's fitted state becomes the estimator's.
            self._publish(fitted._state, fitted._features())
            self._publish_sizing(explained, record)
            return self
        fit_once(
            *self._fit_inputs(X, sample_weight, continuing=self.warm_start),
            incremental=False,
            started=started,
        )
        self._publish_measured(X, sample_weight)
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
        fit_once(
            *self._fit_inputs(X, sample_weight, continuing=True),
            incremental=True,
            started=started,
        )
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
                "Nothing to resume: the last fit of this MLPAutoencoder ran to its "
                "end. To train further, set warm_start=True and call fit, or call "
                "partial_fit."
            )
        data = self._check_training_input(X, sample_weight, reset=False)
        resume_fit(
            self._fit_config(), data, self._state, _Hooks(self, data.features), started
        )
        self._publish_measured(X, sample_weight)
        return self

    def _fit_inputs(self, X, sample_weight, continuing):
        """Validate X into (config, data, state to continue or None, hooks)."""
        previous = None
        if continuing and "_state" in self.__dict__:
            previous = self._state
        data = self._check_training_input(X, sample_weight, reset=previous is None)
        return self._fit_config(), data, previous, _Hooks(self, data.features)

    def _fit_config(self):
        """Return the frozen parameters of one fit: what `skae._fitting` reads."""
        return FitConfig(
            **{name: getattr(self, name) for name in FitConfig.names()},
            params=self._training_params(),
        )

    def _training_params(self):
        """Return the parameters a fit's plan depends on, as JSON values."""
        names = (
            "solver",
            "learning_rate",
            "learning_rate_init",
            "alpha",
            "batch_size",
            "max_iter",
            "max_time",
            "shuffle",
            "tol",
            "n_iter_no_change",
            "validation_fraction",
            "momentum",
            "noise",
            "precision",
            "loss",
        )
        # NumPy scalars (np.float32(60) for max_time, say) as plain JSON values.
        return {
            name: value.item() if isinstance(value, np.generic) else value
            for name in names
            for value in [getattr(self, name)]
        }

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

    def _publish_measured(self, X, sample_weight):
        """Measure the explained variance of the model just fitted on X; publish it."""
        X = self._validate_input(X, reset=False)
        weights = None
        if sample_weight is not None:
            weights = check_weights(sample_weight, X).astype(np.float64)
        self._publish_sizing(measured_explained_variance(self, X, weights), None)

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
        metadata, tensors = self._state.to_tensors()
        names = self.__dict__.get("feature_names_in_")
        metadata["n_features_in_"] = int(self.n_features_in_)
        metadata["output_config"] = self.__dict__.get("_sklearn_output_config")
        metadata["feature_names_in_"] = (
            None if names is None else [str(name) for name in names]
        )
        metadata["explained_variance_score_"] = self.__dict__.get(
            "explained_variance_score_"
        )
        metadata["n_components_search_"] = self.__dict__.get("n_components_search_")
        return metadata, tensors

    def _from_file(self, metadata, tensors):
        """Become the fitted model described by `_to_file`'s output, or raise."""
        state = TrainingState.from_tensors(
            metadata,
            tensors,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
        )
        n_features = state.architecture["n_features"]
        if metadata["n_features_in_"] != n_features:
            raise ValueError(
                f"n_features_in_={metadata['n_features_in_']!r} differs from the "
                f"architecture's {n_features}."
            )
        features = {"n_features_in_": n_features}
        names = metadata.get("feature_names_in_")
        if names is not None:
            if not isinstance(names, list) or len(names) != n_features:
                raise ValueError(f"feature_names_in_ should list {n_features} names.")
            features["feature_names_in_"] = np.asarray(
                [str(name) for name in names], dtype=object
            )
        sizing = check_sizing_metadata(
            metadata.get("explained_variance_score_"),
            metadata.get("n_components_search_"),
        )
        output_config = metadata.get("output_config")
        if output_config is not None:
            if not (
                isinstance(output_config, dict)
                and set(output_config) <= {"transform"}
                and all(
                    v in ("default", "pandas", "polars") for v in output_config.values()
                )
            ):
                raise ValueError(f"output_config {output_config!r} is not valid.")
            self._sklearn_output_config = dict(output_config)
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
                f"This MLPAutoencoder was fitted on {device}, which is not "
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

    # Validation: everything is checked into locals before anything changes.

    def _check_training_input(self, X, sample_weight, reset):
        """Validate X, the sample weights and the parameters, changing nothing."""
        if reset:
            # validate_data(reset=True) records X's features on the estimator it
            # is given: give it a shallow copy, so a refused call leaves none.
            probe = type(self).__new__(type(self))
            probe.__dict__.update(
                {k: v for k, v in self.__dict__.items() if not _is_fitted(k)}
            )
        else:
            probe = self
        X = probe._validate_input(X, reset=reset)
        missing = check_missing(self, X, first_fit=reset)
        check_trainable_range(X)
        weights = None
        if sample_weight is not None:
            weights = torch.from_numpy(check_weights(sample_weight, X))
        hidden_layer_sizes = check_hidden_layer_sizes(self)
        noise = check_noise(self)
        check_fit_params(self, X)
        return _TrainingData(
            X=X,
            weight=weights,
            noise=noise,
            architecture=architecture(self, X.shape[1], hidden_layer_sizes),
            features=probe._features(),
            missing=missing,
        )

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


class _Hooks:
    """What the fit procedure calls back: the estimator's side of a fit."""

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
