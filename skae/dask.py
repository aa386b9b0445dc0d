"""Train one model across the workers of a Dask cluster (``pip install "skae[dask]"``).

`fit_distributed` runs one rank of a ``torch.distributed`` process group on
each Dask worker that holds blocks of a dask array, through Dask's own
``Client.submit``: each rank fits on the blocks its worker holds, and all
ranks train one model (see ``MLPAutoencoder(distributed=...)``). Dask starts
and places the work; skae only joins the ranks.
"""

import os
import socket

import numpy as np
from sklearn.base import clone

__all__ = ["fit_distributed"]


def fit_distributed(estimator, X, *, client=None, backend="gloo"):
    """Fit a clone of `estimator` on a dask array, one rank per worker holding it.

    Each Dask worker that holds blocks of `X` becomes a rank of a
    ``torch.distributed`` group (gloo over TCP, or `backend`) and fits the
    clone to the rows of its blocks, concatenated; the ranks train one model
    through DistributedDataParallel, and rank 0's fitted model is returned.
    The blocks stay where Dask put them: a rank reads only its worker's.

    Parameters
    ----------
    estimator : MLPAutoencoder
        The model to fit; it is cloned, never changed. Its width must be an int
        (the width search does not run across ranks).
    X : dask.array.Array of shape (n_samples, n_features)
        The rows, in blocks of rows (column blocks are joined first).
    client : distributed.Client, default=None
        The cluster; None uses the current default client. Each worker must be
        its own process (e.g. ``LocalCluster(processes=True)``): a process
        holds one rank.
    backend : {"gloo", "nccl"}, default="gloo"
        The torch.distributed backend: gloo on CPUs, nccl for workers that each
        own a GPU (set the estimator's ``device`` to match).

    Returns
    -------
    estimator : MLPAutoencoder
        The fitted clone, as rank 0 fitted it (every rank's is the same).

    See Also
    --------
    skae.MLPAutoencoder : Its ``distributed`` parameter: what the ranks share.

    Examples
    --------
    >>> import dask.array as da  # doctest: +SKIP
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> from skae import MLPAutoencoder  # doctest: +SKIP
    >>> from skae.dask import fit_distributed  # doctest: +SKIP
    >>> cluster = LocalCluster(n_workers=2, threads_per_worker=1)  # doctest: +SKIP
    >>> client = Client(cluster)  # doctest: +SKIP
    >>> X = da.random.random((20_000, 30), chunks=(5_000, 30))  # doctest: +SKIP
    >>> model = fit_distributed(MLPAutoencoder(5), X, client=client)  # doctest: +SKIP
    """
    from distributed import default_client, futures_of, wait

    client = client or default_client()
    if X.ndim != 2:
        raise ValueError(f"X must be 2-d (rows, features); got {X.ndim} dimensions.")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    X = client.persist(X)
    wait(X)
    keys = {future.key: future for future in futures_of(X)}
    holders = client.who_has(list(keys.values()))
    # Blocks in row order, each given to (the first of) the workers holding it.
    order = [key for key in _row_keys(X) if key in keys]
    by_worker = {}
    for key in order:
        worker = sorted(holders[key])[0]
        by_worker.setdefault(worker, []).append(keys[key])
    workers = sorted(by_worker)
    pids = client.run(os.getpid, workers=workers)
    if len(set(pids.values())) < len(workers):
        raise ValueError(
            "Some Dask workers share a process, and a process holds one rank: "
            "start the cluster with a process per worker, e.g. "
            "LocalCluster(n_workers=2, processes=True, threads_per_worker=1)."
        )
    address = _host(workers[0])
    port = client.submit(_free_port, address, workers=[workers[0]], pure=False).result()
    model = clone(estimator)
    futures = [
        client.submit(
            _fit_rank,
            model,
            rank,
            len(workers),
            f"tcp://{address}:{port}",
            backend,
            *by_worker[worker],
            workers=[worker],
            allow_other_workers=False,
            pure=False,
        )
        for rank, worker in enumerate(workers)
    ]
    return client.gather(futures)[0]


def _row_keys(X):
    """Return the keys of X's blocks in row order (one column block)."""
    return [(X.name, i, 0) for i in range(X.numblocks[0])]


def _host(address):
    """Return the host of a worker address such as 'tcp://10.0.0.5:38211'."""
    return address.split("://", 1)[-1].rsplit(":", 1)[0]


def _free_port(host):
    """Return a TCP port free on `host` now (run on rank 0's worker)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _fit_rank(model, rank, world_size, address, backend, *blocks):
    """Join the group as `rank`, fit `model` to the blocks; return it on rank 0."""
    import torch.distributed as dist

    X = np.concatenate(blocks) if blocks else None
    dist.init_process_group(
        backend, init_method=address, rank=rank, world_size=world_size
    )
    given = model.distributed
    try:
        model.set_params(distributed=True)
        model.fit(X)
    finally:
        model.set_params(distributed=given)
        dist.destroy_process_group()
    return model if rank == 0 else None
