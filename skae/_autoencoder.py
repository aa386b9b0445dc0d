"""MLPAutoencoder: the multi-layer perceptron family of skae's autoencoders."""

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions

from skae._base import BaseAutoencoder
from skae._config import FitConfig
from skae._modules import ACTIVATIONS
from skae._training import LOSSES, PRECISIONS, SCHEDULES, SOLVERS
from skae._validation import (
    check_fit_params,
    check_hidden_layer_sizes,
    check_noise,
)


class MLPAutoencoder(BaseAutoencoder):
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
        reconstruction explains at least that fraction of the variance on the
        rows early stopping holds out (else the training rows): `fit` searches
        the widths up to PCA's width for it (``n_components_search_``) and
        warns when none reaches it. `partial_fit` and `resume` need an int.

    hidden_layer_sizes : "auto" or array-like of shape (n_layers,), default="auto"
        Widths of the encoder's hidden layers, from the input towards the code.
        The decoder uses them in reverse order. ``()`` gives a single linear
        layer each way. "auto" is (512, 256, 128) for codes of up to 16 units
        and (512, 256) for wider ones; the fitted choice is in
        ``hidden_layer_sizes_``. The user guide's training page says how the
        defaults were chosen.

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
        `partial_fit` always uses ``learning_rate_init``.

    learning_rate_init : float, default=0.002
        Learning rate of the optimizer (the peak of a schedule). With a PCA
        start, the linear PCA paths train at a tenth of this rate.

    alpha : float, default=0.0
        Strength of the L2 penalty on the weights, in MLPRegressor's form:
        ``0.5 * alpha * sum(W ** 2) / batch_size`` is added to the loss.

    batch_size : int, default=256
        Rows per optimisation step; clipped to the number of samples.

    max_iter : int, default=18
        Maximum number of epochs (passes over the training data) of a `fit`.

    max_time : float, default=None
        Time budget of a `fit`, in seconds, counted from the call. After every
        epoch the fit re-sizes its plan and its learning-rate schedule to the
        epochs the time left affords, capped by ``max_iter``; a budget shorter
        than the first epoch trains one and warns. A budgeted fit is not
        reproducible bit for bit. `partial_fit` ignores it; a width search
        shares it among the widths. See the user guide's time-budget page.

    shuffle : bool, default=True
        Whether to draw a new order of the samples at every epoch.

    tol : float, default=1e-5
        Tolerance of the stopping rule: when the training loss (or, with
        ``early_stopping``, the validation score) has not improved by at least
        ``tol`` for ``n_iter_no_change`` consecutive epochs, training stops
        (MLPRegressor's rule).

    n_iter_no_change : int, default=10
        Epochs without improvement tolerated by the stopping rule. Epochs in
        the warm-up of a one-cycle schedule (its first 30%) are not counted.

    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the training data, score it after
        every epoch, stop when the score stops improving and restore the
        weights of the best epoch. With ``init="pca"`` the best epoch is kept
        only when it beats PCA of the training rows beyond noise on the
        held-out rows; otherwise the fit returns PCA of all the rows, as
        ``PCA().fit(X)`` would. "auto": on for a PCA start at any size and for
        a random start from 1,000 samples; off where a side of the split would
        have only zero sample weights (a PCA start then returns PCA, with a
        warning, as on tiny data: the test against PCA cannot run).
        `partial_fit` refuses ``True`` and
        treats "auto" as off.

    validation_fraction : float, default=0.1
        Fraction of the training data held out when early stopping is on.

    warm_start : bool, default=False
        When True, `fit` continues from the weights, optimizer state and random
        state of the previous fit instead of starting afresh, holding out the
        same rows for early stopping (after a fit that held none out, such as
        a cross-validated one on small data, it warns that the rows it holds
        out may have been trained on). Each fit runs its own learning-rate
        schedule; use `resume` to finish a fit that was cut short.

    momentum : float, default=0.9
        Momentum of the "sgd" solver; ignored by the others.

    noise : float or dict, default=None
        Corrupt the inputs, never the targets, while training: a denoising
        autoencoder. A float is the standard deviation of added Gaussian noise;
        a dict may set ``{"gaussian": std, "mask": fraction, "missing":
        fraction}``: "mask" zeroes that fraction of the entries, "missing"
        hides it from the encoder while the loss still scores it.

    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the validation split and the shuffling,
        through a private torch generator (the global torch and NumPy states
        are left alone); None draws one seed from NumPy's global random state,
        as scikit-learn's estimators do. Pass an int for reproducible results.

    verbose : int, default=0
        0 prints nothing; 1 prints one line per epoch (loss and seconds); 2 or
        more also shows a tqdm progress bar over each epoch's batches (on stderr,
        when tqdm is installed).

    device : str, default="cpu"
        Torch device to train and infer on: "cpu", "cuda", "cuda:1", "mps", or
        "auto" (the first of cuda, mps and cpu that is available).

    precision : {"auto", "float32", "bfloat16"}, default="auto"
        Arithmetic of training. "bfloat16" runs the matrix products of the
        forward pass in bfloat16 under torch.autocast (weights, gradients and
        optimizer stay float32): faster on GPUs and on CPUs with native bfloat16
        (AVX512-BF16, AMX), far slower elsewhere. "auto" chooses bfloat16 where
        the device computes it natively and the fit trains on at least 10,000
        rows, float32 elsewhere: decided by the hardware, never by timing, so a
        fixed ``random_state`` gives one model on a given machine.
        `precision_` records the choice. Inference is always float32. See the
        user guide's performance page.

    callbacks : list of callable, default=None
        Each is called at the end of every epoch as ``callback(estimator,
        record)``, where ``record`` has the fields ``epoch`` (from 0),
        ``train_loss``, ``validation_loss`` and ``seconds``. The estimator can be
        used for inference inside the callback (with early stopping, its
        weights are the best epoch's so far; in a width search, those of the
        width being tried). Returning True stops training. A callback that
        raises ends the fit and leaves the estimator as it was before the call.

    distributed : {"auto", True, False}, default="auto"
        Train across the ranks of a ``torch.distributed`` process group.
        "auto": when `fit`, `partial_fit` or `resume` runs inside an
        initialised default process group of two ranks or more (as under
        ``torchrun``), every rank passes the rows it holds and all ranks train
        one model, through DistributedDataParallel, and end with the same
        fitted model; otherwise the fit trains on its own rows. True requires
        such a group, False ignores it. Every rank must make the same call.
        See the user guide's page on several GPUs or machines.

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
        Lowest training loss reached; None when early stopping held out rows
        (set on small data that was cross-validated instead: its final
        training holds none out).

    validation_scores_ : list of float or None
        Score (negative mean squared error) of the held-out data after every
        epoch; None unless early stopping was on.

    validation_loss_curve_ : list of float or None
        Training loss function on the held-out data after every epoch; None
        unless early stopping was on.

    best_validation_score_ : float or None
        Best validation score of the candidates, whose weights the model keeps:
        the epochs in ``validation_scores_`` and the model the fit started from,
        so it may exceed ``max(validation_scores_)``; PCA's score when the fit
        returns PCA. None unless early stopping was on.

    n_iter_ : int
        Number of epochs run, over all calls to `fit` (with warm start) and
        `partial_fit`.

    fit_time_ : float
        Seconds the last `fit`, `partial_fit` or `resume` took to train, from
        the call until the model was final; with a float ``n_components``, the
        whole width search.

    precision_ : {"float32", "bfloat16"}
        Arithmetic the last fit trained in: ``precision`` with "auto" resolved.

    n_components_ : int
        Width of the code: ``n_components`` when it is an int, else the width
        the search chose.

    explained_variance_score_ : float or None
        Fraction of the variance the fitted model's reconstruction explains
        (`skae.metrics.explained_variance`), measured at the end of `fit` or
        `resume` on the rows early stopping held out (by PCA of the training
        rows when the fit returned PCA of all the rows), else on the training
        rows: the counterpart of PCA's ``explained_variance_ratio_.sum()``.
        None after `partial_fit`.

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
        "distributed": [StrOptions({"auto"}), "boolean"],
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
        precision="auto",
        callbacks=None,
        distributed="auto",
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
        self.distributed = distributed

    @property
    def hidden_layer_sizes_(self):
        """The encoder's hidden widths the fitted model was built with."""
        state = self.__dict__.get("_state")
        if state is None:
            raise AttributeError(
                "hidden_layer_sizes_ is set by fit; this MLPAutoencoder is not "
                "fitted yet."
            )
        return tuple(state.architecture["hidden_layer_sizes"])

    def _fit_config(self, X):
        """Check the parameters against validated X; return the frozen FitConfig."""
        hidden_layer_sizes = check_hidden_layer_sizes(self)
        noise = check_noise(self)
        check_fit_params(self, X)
        return FitConfig.from_params(
            self.get_params(deep=False),
            n_features=X.shape[1],
            hidden_layer_sizes=hidden_layer_sizes,
            noise=noise,
        )
