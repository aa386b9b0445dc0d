"""
Scaling out with Dask
=====================

When the data no longer fits in memory, or one machine is too slow, Dask runs
scikit-learn estimators block by block and across workers, and skae works with
it as it is:

- ``dask_ml.wrappers.Incremental`` trains on a dask array one block at a time
  through ``partial_fit``, so only a block is in memory at once;
- ``dask_ml.wrappers.ParallelPostFit`` runs ``transform`` on the workers, block
  by block; the fitted estimator travels to them by pickle, weights on the CPU;
- ``GridSearchCV`` under ``joblib.parallel_backend("dask")`` spreads the fits of a
  search over the cluster.

Needs ``pip install skae[dask]``. Here the cluster is two local worker
processes; point ``Client`` at a real scheduler to use many machines. Set
``SKAE_EXAMPLES_FAST=1`` to run with tiny settings.
"""

import os

import dask.array as da
import joblib
import pandas as pd
from dask_ml.wrappers import Incremental
from distributed import Client, LocalCluster
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV

from skae import MLPAutoencoder
from skae.datasets import load_mnist_sample

FAST = os.environ.get("SKAE_EXAMPLES_FAST") == "1"

if __name__ == "__main__":  # worker processes import this file: start once
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    )
    client = Client(cluster)

    X, y = load_mnist_sample()
    X_train, X_test = X[:4000], X[4000:]
    if FAST:
        X_train = X_train[:1000]
    # A dask array in blocks of 500 images; it could as well come from
    # da.from_zarr or a stack of files far larger than memory.
    X_blocks = da.from_array(X_train, chunks=(500, 784))

    # %%
    # Training block by block. ``Incremental.partial_fit`` makes one pass over
    # the blocks, one ``MLPAutoencoder.partial_fit`` call per block; passes are
    # epochs.
    incremental = Incremental(MLPAutoencoder(n_components=30, random_state=0))
    for _ in range(1 if FAST else 10):
        incremental.partial_fit(X_blocks)
    ae = incremental.estimator_
    print(f"{ae.n_iter_} blocks seen, training loss {ae.loss_:.4f}")

    # %%
    # Transforming on the workers, block by block; the results are dask arrays,
    # computed on demand. ``dask.array.map_blocks`` is told the width of the
    # output; ``dask_ml.wrappers.ParallelPostFit(ae).transform`` computes the
    # same codes, but declares the input's width for them and ships the model
    # with every block.
    X_test_blocks = da.from_array(X_test, chunks=(250, 784))
    # Scatter the model once: as a bound method it would travel with every task.
    model = client.scatter(ae, broadcast=True)
    codes = da.map_blocks(
        lambda block, estimator: estimator.transform(block),
        X_test_blocks,
        model,
        chunks=(X_test_blocks.chunks[0], (ae.n_components,)),
        dtype=X_test.dtype,
    )
    reconstructed = da.map_blocks(
        lambda block, estimator: estimator.inverse_transform(block),
        codes,
        model,
        chunks=X_test_blocks.chunks,
        dtype=X_test.dtype,
    )
    print("codes:", codes.shape, "in", codes.numblocks[0], "blocks")
    mse = float(((reconstructed - X_test) ** 2).mean().compute())
    pca = PCA(30).fit(X_train)
    pca_mse = ((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2).mean()
    print(f"test MSE: autoencoder {mse:.4f}, PCA {pca_mse:.4f}")

    # %%
    # A grid search whose fits run on the cluster's workers.
    search = GridSearchCV(
        MLPAutoencoder(max_iter=2 if FAST else 10, random_state=0),
        {"n_components": [8, 16, 32]},
        cv=2,
    )
    with joblib.parallel_backend("dask"):
        search.fit(X_train)
    print(pd.DataFrame(search.cv_results_)[["param_n_components", "mean_test_score"]])

    client.close()
    cluster.close()
