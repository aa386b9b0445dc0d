"""skae under Dask: Incremental training, parallel inference, distributed search.

One LocalCluster (2 worker processes, loopback only, no dashboard) serves the
whole module and is shut down at its end.
"""

import functools
import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import _helpers

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
wrappers = pytest.importorskip("dask_ml.wrappers")
joblib = pytest.importorskip("joblib")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Wider, with skae's max_iter and early stopping: a fit as a user's, spread on Dask.
tiny = functools.partial(
    _helpers.tiny, hidden_layer_sizes=(16,), max_iter=18, early_stopping="auto"
)


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # port and resource notices from distributed
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def X():
    rng = np.random.RandomState(0)
    return (rng.rand(2000, 3) @ rng.rand(3, 12)).astype(np.float32) / 3


def incremental_and_local(X):
    """Fit dask-ml's Incremental on 400-row blocks of X, and a local loop of
    partial_fit over the same blocks in order; return both fitted models."""
    X_dask = da.from_array(X, chunks=400)
    incremental = wrappers.Incremental(tiny(), shuffle_blocks=False)
    incremental.fit(X_dask)
    local = tiny()
    for start in range(0, X.shape[0], 400):
        local.partial_fit(X[start : start + 400])
    return X_dask, incremental, local


# promise: dask.rst / Training on data larger than memory
def test_incremental_fits_block_by_block_through_partial_fit(client, X):
    # One partial_fit per block, in order: the same model as a local loop.
    X_dask, incremental, local = incremental_and_local(X)
    fitted = incremental.estimator_
    assert fitted.n_iter_ == 5
    assert_array_equal(fitted.transform(X), local.transform(X))
    # dask-ml scores through the estimator's score: negative reconstruction error.
    assert incremental.score(X_dask, None) == pytest.approx(local.score(X), rel=1e-5)


# promise: dask.rst / Inference on the workers
def test_parallel_post_fit_transforms_on_the_workers(client, X):
    ae = tiny(max_iter=3).fit(X)
    X_dask = da.from_array(X, chunks=250)
    parallel = wrappers.ParallelPostFit(ae)
    Z = parallel.transform(X_dask)
    assert isinstance(Z, da.Array) and Z.chunks[0] == (250,) * 8
    # Equal to float32 rounding: the CPU kernel's summation order can depend on
    # where a block lies in a worker's memory (its alignment).
    assert_allclose(Z.compute(), ae.transform(X), rtol=1e-5, atol=1e-6)
    X_back = da.map_blocks(
        ae.inverse_transform, Z, chunks=(Z.chunks[0], (12,)), dtype=np.float32
    )
    assert X_back.shape == X.shape
    X_back = X_back.compute()
    assert_allclose(X_back, ae.inverse_transform(ae.transform(X)), rtol=1e-5, atol=1e-6)
    # The estimator travels to the workers by pickle: small, weights on the CPU.
    payload = pickle.dumps(ae)
    n_weights = sum(
        p.numel() for m in (ae.encoder_, ae.decoder_) for p in m.parameters()
    )
    # weights and Adam's two moments, 4 bytes each, plus a fixed ~30 KB (the
    # random state, one small header per tensor)
    assert len(payload) < 3 * 4 * n_weights + 50_000
    assert all(
        p.device.type == "cpu"
        for m in (pickle.loads(payload).encoder_,)
        for p in m.parameters()
    )


# promise: dask.rst / Model selection
def test_grid_search_on_the_dask_joblib_backend(client, X):
    pipe = Pipeline([("scale", StandardScaler()), ("ae", tiny(max_iter=5))])
    search = GridSearchCV(pipe, {"ae__n_components": [1, 3, 6]}, cv=2)
    with joblib.parallel_backend("dask"), distributed.get_task_stream(client) as tasks:
        search.fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert scores.shape == (3,) and np.isfinite(scores).all()
    # The data has rank 3: three or more components reconstruct it far better.
    assert search.best_params_["ae__n_components"] in (3, 6)
    assert scores[1] > scores[0]
    # The workers really ran the fits: 3 widths x 2 folds (the refit is local).
    assert len(tasks.data) >= 6


# promise: dask.rst / Training on data larger than memory
def test_partial_fit_loop_over_a_memmap(tmp_path, X):
    path = tmp_path / "X.f32"
    big = np.memmap(path, dtype=np.float32, mode="w+", shape=(20_000, 12))
    for start in range(0, 20_000, 2000):
        big[start : start + 2000] = X
    big.flush()
    data = np.memmap(path, dtype=np.float32, mode="r", shape=(20_000, 12))
    ae = tiny(init="random", learning_rate_init=0.01)
    first_score = None
    for _ in range(2):
        for start in range(0, data.shape[0], 5000):  # 5,000 rows in memory at once
            ae.partial_fit(data[start : start + 5000])
            first_score = first_score or ae.score(X)
    assert ae.n_iter_ == 8
    assert ae.score(X) > first_score


def test_missing_entries_through_incremental_and_parallel_post_fit(client, X):
    holed = X.copy()
    holed[np.random.RandomState(1).rand(*X.shape) < 0.2] = np.nan
    X_dask, incremental, local = incremental_and_local(holed)
    assert_array_equal(incremental.estimator_.transform(holed), local.transform(holed))
    Z = wrappers.ParallelPostFit(local).transform(X_dask).compute()
    assert np.isfinite(Z).all()
    assert_allclose(Z, local.transform(holed), rtol=1e-5, atol=1e-6)


# promise: dask.rst / Inference on the workers
def test_scattered_model_mapped_over_blocks_gives_the_codes_of_transform(
    client, X_small
):
    import torch

    X = X_small.astype(np.float32)
    ae = tiny(max_iter=2).fit(X)
    X_dask = da.from_array(X, chunks=50)
    model = client.scatter(ae, broadcast=True)
    codes = da.map_blocks(
        lambda block, est: est.transform(block),
        X_dask,
        model,
        chunks=(X_dask.chunks[0], (ae.n_components,)),
        dtype=X_dask.dtype,
    )
    worker_threads = set(client.run(torch.get_num_threads).values())
    codes = codes.compute()
    # performance.rst promises a row the same bits whatever rows come with it,
    # on one machine with the same number of threads. The workers run torch
    # with threads_per_worker=1 thread, so the reference is computed here with
    # as many threads as they use; then the codes must be the same bits.
    (n_threads,) = worker_threads
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        expected = ae.transform(X)
    finally:
        torch.set_num_threads(before)
    assert codes.shape == (200, 2) and codes.dtype == np.float32
    assert_array_equal(codes, expected)
