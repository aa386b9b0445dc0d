"""What the ranks of tests/test_distributed.py run (see _ranks.run_ranks)."""

import os
import warnings

import numpy as np
from _ranks import Raised, scenario


def data(n_samples=600, n_features=12, seed=0):
    """Rows on a curved 2-d manifold in 12 dimensions, with a little noise."""
    rng = np.random.RandomState(seed)
    t = rng.rand(n_samples, 2) * 3
    columns = [np.sin(k * t[:, :1] + t[:, 1:]) for k in range(1, n_features + 1)]
    return np.hstack(columns) + 0.01 * rng.randn(n_samples, n_features)


def parameters(model):
    """The fitted model's weights, as NumPy arrays, in a fixed order."""
    return [p.detach().numpy().copy() for p in model._state.encoder.parameters()] + [
        p.detach().numpy().copy() for p in model._state.decoder.parameters()
    ]


def described(model):
    """What a test compares between ranks: weights and fitted attributes."""
    return {
        "parameters": parameters(model),
        "n_iter": model.n_iter_,
        "loss_curve": list(model.loss_curve_),
        "validation_scores": model.validation_scores_,
        "explained_variance": model.explained_variance_score_,
        "precision": model.precision_,
    }


@scenario
def fit_halves(rank, world_size, rows=600, missing=False, sparse=False, **params):
    """Each rank fits the default model to its half of `data()`."""
    from skae import MLPAutoencoder

    X = data(rows)
    if missing:
        X[np.random.RandomState(1).rand(*X.shape) < 0.1] = np.nan
    mine = np.array_split(np.arange(len(X)), world_size)[rank]
    X = X[mine]
    if sparse:
        import scipy.sparse

        X = scipy.sparse.csr_matrix(np.where(X > 0.5, X, 0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPAutoencoder(**params).fit(X)
    return described(model)


@scenario
def dies(rank, world_size):
    """Rank 1 dies in its second epoch; rank 0 reports the failure."""
    from skae import MLPAutoencoder

    def die(estimator, record):
        if rank == 1 and record.epoch == 1:
            os._exit(3)

    X = data(400)[rank::world_size]
    MLPAutoencoder(
        2, max_iter=50, early_stopping=False, random_state=0, callbacks=[die]
    ).fit(X)
    return "finished"


@scenario
def checkpoint_then_resume(rank, world_size, folder, resume_world=None):
    """Fit with a checkpoint after epoch 2 and stop; then resume from it."""
    import skae
    from skae import MLPAutoencoder
    from skae.callbacks import Checkpoint

    X = data(400)[rank::world_size]
    path = os.path.join(folder, "ckpt.skae")

    def stop(estimator, record):
        return record.epoch == 1

    if resume_world is None:
        MLPAutoencoder(
            2,
            max_iter=6,
            random_state=0,
            callbacks=[Checkpoint(path), stop],
        ).fit(X)
        return {"files": sorted(os.listdir(folder))}
    model = skae.load(path)
    model.resume(X)
    return described(model)


@scenario
def same_global_batch(rank, world_size, rows=512, batch_size=64, **params):
    """Each rank fits its half without shuffling; returns the weights."""
    from skae import MLPAutoencoder

    X = data(rows)[rank * rows // 2 : (rank + 1) * rows // 2]
    model = MLPAutoencoder(
        2,
        batch_size=batch_size,
        shuffle=False,
        early_stopping=False,
        random_state=0,
        **params,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    return described(model)


@scenario
def default_fit(rank, world_size, rows, test_rows):
    """Each rank fits the defaults to its share; returns the held-out error."""
    from skae import MLPAutoencoder

    X = data2(rows + test_rows)
    train, test = X[:rows], X[rows:]
    model = MLPAutoencoder(2, random_state=0).fit(train[rank::world_size])
    error = float(np.mean((model.inverse_transform(model.transform(test)) - test) ** 2))
    return {**described(model), "error": error}


def data2(n_samples, n_features=12, seed=0):
    """Rows on a smooth 2-d manifold (tanh of a plane) with a little noise."""
    rng = np.random.RandomState(seed)
    t = rng.rand(n_samples, 2) * 2 - 1
    A = np.random.RandomState(42).randn(2, n_features)
    return np.tanh(1.5 * t @ A) + 0.01 * rng.randn(n_samples, n_features)


@scenario
def variants(rank, world_size):
    """Fits across the ranks with missing, sparse and weighted rows, and more."""
    import scipy.sparse

    from skae import MLPAutoencoder

    X = data(600)[rank::world_size]
    results = {}

    def fit(name, X, **params):
        params = {"n_components": 2, "random_state": 0, **params}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = MLPAutoencoder(**params).fit(X)
            results[name] = described(model)
        except Exception as error:
            results[name] = Raised(type(error).__name__, str(error))

    fit("defaults", X)
    holed = X.copy()
    holed[np.random.RandomState(rank).rand(*X.shape) < 0.1] = np.nan
    fit("missing", holed)
    fit("sparse", scipy.sparse.csr_matrix(np.where(X > 0.5, X, 0.0)))
    weights = np.random.RandomState(rank).rand(len(X)) + 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPAutoencoder(2, random_state=0).fit(X, sample_weight=weights)
    results["weights"] = described(model)
    fit("budget", X, max_iter=1000, max_time=2)
    fit("bfloat16", X, precision="bfloat16", max_iter=3)
    fit("search", X, n_components=0.9)
    fit("alone", X, distributed=False)
    return results


@scenario
def interrupted(rank, world_size):
    """Ctrl-C on rank 0 in the second epoch; each rank says what it saw."""
    from skae import MLPAutoencoder

    def press(estimator, record):
        # The warm start's second epoch: the first fit ran epochs 0 to 2.
        if rank == 0 and record.epoch == 4:
            raise KeyboardInterrupt

    X = data(400)[rank::world_size]
    model = MLPAutoencoder(2, max_iter=3, early_stopping=False, random_state=0)
    model.fit(X)
    before = parameters(model)
    model.set_params(max_iter=50, callbacks=[press], warm_start=True)
    try:
        model.fit(X)
    except KeyboardInterrupt:
        unchanged = all(
            np.array_equal(a, b) for a, b in zip(before, parameters(model), strict=True)
        )
        return {"interrupted": True, "unchanged": unchanged}
    return {"interrupted": False}


@scenario
def disagreements(rank, world_size):
    """Ranks whose rows or calls differ: trained alike, or refused on every rank."""
    import scipy.sparse

    from skae import AutoencoderImputer, MLPAutoencoder

    X = data(600)[rank::world_size]
    results = {}

    def attempt(name, fit):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results[name] = described(fit())
        except Exception as error:
            results[name] = Raised(type(error).__name__, str(error))

    holed = X.copy()
    if rank == 1:
        holed[::3, 0] = np.nan
    attempt("missing on one rank", lambda: MLPAutoencoder(2, random_state=0).fit(holed))
    mixed = scipy.sparse.csr_matrix(X) if rank == 0 else X
    attempt("sparse on one rank", lambda: MLPAutoencoder(2, max_iter=2).fit(mixed))
    batch = 64 if rank == 0 else 32
    attempt(
        "batch_size", lambda: MLPAutoencoder(2, max_iter=2, batch_size=batch).fit(X)
    )
    weights = {"sample_weight": np.ones(len(X))} if rank == 0 else {}
    attempt(
        "weights on one rank", lambda: MLPAutoencoder(2, max_iter=2).fit(X, **weights)
    )
    # Linear rows: the fit returns PCA, and every rank the same weights.
    linear = np.random.RandomState(0).rand(2000, 6) @ np.random.RandomState(1).rand(
        6, 12
    )
    attempt(
        "returns PCA",
        lambda: MLPAutoencoder(4, max_iter=3, random_state=0).fit(
            linear[rank::world_size]
        ),
    )
    # Each rank's random_state is its own: rank 0's initial weights win.
    attempt(
        "random_state",
        lambda: MLPAutoencoder(2, max_iter=2, random_state=rank).fit(X),
    )

    def stop_on_rank_1(estimator, record):
        return rank == 1 and record.epoch == 1

    attempt(
        "stopped by one rank",
        lambda: MLPAutoencoder(
            2, max_iter=6, early_stopping=False, callbacks=[stop_on_rank_1]
        ).fit(X),
    )
    imputer = AutoencoderImputer(autoencoder=MLPAutoencoder(2, max_iter=2))
    attempt("imputer", lambda: imputer.fit(holed if rank == 1 else X).autoencoder_)
    return results
