"""Dask on one machine: transform throughput with 1 and 2 workers, memmap training.

1. Transforms the same dask array of images with a LocalCluster of one worker,
   then of two (each one process, one thread, torch on one thread), and prints
   rows/s and their ratio.
2. Streams a numpy memmap far larger than one chunk through ``partial_fit``
   and reports the peak anonymous memory (not the file's page cache) above the
   baseline, next to the size of one chunk and of the whole file.

Run:  python bench/dask_scale.py [--rows 200000] [--memmap-rows 400000]
      [--chunk-rows 20000] [--out bench/results]
Writes ``dask_scale.json`` into ``--out``.
"""

import argparse
import pickle
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import dask.array as da
import numpy as np
import torch
from distributed import Client, LocalCluster, wait
from sklearn.exceptions import ConvergenceWarning

from skae import MLPAutoencoder
from skae._presets import CHAPTER_PARAMS

from common import PeakAnonMemory, random_memmap, write_results

warnings.filterwarnings("ignore", category=ConvergenceWarning)


def one_torch_thread():
    """Run on each worker: one torch thread per worker process."""
    torch.set_num_threads(1)


def encode(block, estimator):
    """Transform one block (the estimator arrives once, scattered to the workers)."""
    return estimator.transform(block)


def transform_rates(ae, X, n_workers):
    """Rows/s of transforming the dask array X on a fresh LocalCluster.

    Returns the rate with the estimator shipped inside every task (a bound
    method in map_blocks, as ParallelPostFit does) and with it scattered once.
    """
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(one_torch_thread)
        # The images live on the workers before the clock starts.
        X = client.persist(X)
        wait(X)
        chunks = (X.chunks[0], (ae.n_components,))
        rates = {}
        for how in ("per_task", "scattered"):
            if how == "per_task":
                codes = da.map_blocks(ae.transform, X, chunks=chunks, dtype=X.dtype)
            else:
                model = client.scatter(ae, broadcast=True)
                codes = da.map_blocks(encode, X, model, chunks=chunks, dtype=X.dtype)
            codes[:1000].compute()  # warm up
            start = time.perf_counter()
            codes.sum().compute()
            rates[how] = X.shape[0] / (time.perf_counter() - start)
        return rates


def memmap_pass(rows, chunk_rows, workdir):
    """One partial_fit pass over a memmap of `rows` images; peak extra memory."""
    X = random_memmap(Path(workdir) / "X.f32", rows, chunk_rows)
    ae = MLPAutoencoder(30, random_state=0)
    ae.partial_fit(X[:chunk_rows])  # build the model before the baseline
    with PeakAnonMemory() as memory:
        start = time.perf_counter()
        for begin in range(chunk_rows, rows, chunk_rows):
            ae.partial_fit(X[begin : begin + chunk_rows])
        seconds = time.perf_counter() - start
    return {
        "rows": rows,
        "file_mb": rows * 784 * 4 / 2**20,
        "chunk_rows": chunk_rows,
        "chunk_mb": chunk_rows * 784 * 4 / 2**20,
        "peak_extra_memory_mb": memory.extra_bytes / 2**20,
        "rows_per_s": (rows - chunk_rows) / seconds,
    }


def main(argv=None):
    """Measure, print, write dask_scale.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--memmap-rows", type=int, default=400_000)
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)

    ae = MLPAutoencoder(**{**CHAPTER_PARAMS, "max_iter": 1}, random_state=0)
    ae.fit(np.random.default_rng(0).random((2000, 784), dtype=np.float32))
    X = da.random.default_rng(0).random((args.rows, 784), chunks=(10_000, 784))
    X = X.astype(np.float32)
    rates = {n: transform_rates(ae, X, n) for n in (1, 2)}
    ratio = rates[2]["scattered"] / rates[1]["scattered"]
    for how in ("per_task", "scattered"):
        print(
            f"transform, chapter model, {args.rows:,} rows, model {how}: 1 worker "
            f"{rates[1][how]:,.0f} rows/s, 2 workers {rates[2][how]:,.0f} rows/s, "
            f"ratio {rates[2][how] / rates[1][how]:.2f}"
        )
    with tempfile.TemporaryDirectory() as workdir:
        memmap = memmap_pass(args.memmap_rows, args.chunk_rows, workdir)
    print(
        f"partial_fit over a {memmap['file_mb']:.0f} MB memmap in "
        f"{memmap['chunk_mb']:.0f} MB chunks: peak extra memory "
        f"{memmap['peak_extra_memory_mb']:.0f} MB, {memmap['rows_per_s']:,.0f} rows/s"
    )
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "transform_rows_per_s": {str(n): rate for n, rate in rates.items()},
        "model_pickle_mb": len(pickle.dumps(ae)) / 2**20,
        "transform_ratio_2_to_1": ratio,
        "memmap_partial_fit": memmap,
    }
    write_results(args.out / "dask_scale.json", result)


if __name__ == "__main__":
    main()
