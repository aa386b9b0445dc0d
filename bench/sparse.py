"""Sparse input at scale: a 200,000 x 20,000 CSR matrix at 0.5% density.

No text corpus ships with these machines, so the matrix is generated: each row
a document of about 100 distinct words drawn from a topic model (20 topics, each
a Zipf-weighted choice of 2,000 of the 20,000 words; two topics a document),
TF-IDF-like weights, rows scaled to unit length. It then fits
``MLPAutoencoder(50, hidden_layer_sizes=(), max_iter=2)`` (linear: a
20,000-512 first layer costs ~30 GFLOP a step, hours on a CPU) and transforms
every row, recording the peak memory above the CSR matrix, the rows/s, and the
reconstruction error on 2,000 rows against TruncatedSVD(50).

Run:  python bench/sparse.py [--rows 200000] [--features 20000] [--out DIR]
"""

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse
from sklearn.decomposition import TruncatedSVD

from skae import MLPAutoencoder

from common import PeakAnonMemory, machine, write_results

warnings.filterwarnings("ignore")
N_TOPICS = 20
WORDS_PER_TOPIC = 2000
WORDS_PER_DOCUMENT = 100
BUDGET_BYTES = 512 * 2**20


def documents(n_rows, n_features, seed=0):
    """Return a float32 CSR matrix of topic-model documents, rows of unit length."""
    rng = np.random.default_rng(seed)
    topics = [
        rng.choice(n_features, WORDS_PER_TOPIC, replace=False) for _ in range(N_TOPICS)
    ]
    zipf = 1.0 / np.arange(1, WORDS_PER_TOPIC + 1)
    zipf /= zipf.sum()
    indptr = np.arange(n_rows + 1, dtype=np.int64) * WORDS_PER_DOCUMENT
    indices = np.empty(n_rows * WORDS_PER_DOCUMENT, dtype=np.int32)
    chunk = 10_000
    for start in range(0, n_rows, chunk):
        stop = min(start + chunk, n_rows)
        for row in range(start, stop):
            first, second = rng.choice(N_TOPICS, 2, replace=False)
            words = np.concatenate(
                [
                    topics[first][rng.choice(WORDS_PER_TOPIC, 70, p=zipf)],
                    topics[second][rng.choice(WORDS_PER_TOPIC, 30, p=zipf)],
                ]
            )
            indices[row * WORDS_PER_DOCUMENT : (row + 1) * WORDS_PER_DOCUMENT] = words
    data = rng.random(indices.size, dtype=np.float32) + 0.5
    X = scipy.sparse.csr_matrix((data, indices, indptr), shape=(n_rows, n_features))
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return scipy.sparse.diags(1 / norms).astype(np.float32) @ X


def csr_bytes(X):
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


def error(model, X):
    dense = X.toarray()
    return float(np.mean((dense - model.inverse_transform(model.transform(X))) ** 2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    X = documents(args.rows, args.features).tocsr().astype(np.float32)
    size = csr_bytes(X)
    print(f"X: {X.shape}, {X.nnz:,} non-zeros, CSR {size / 2**20:.0f} MB", flush=True)
    test = X[:2000]
    ae = MLPAutoencoder(50, hidden_layer_sizes=(), max_iter=2, random_state=0)
    with PeakAnonMemory() as fit_memory:
        start = time.perf_counter()
        ae.fit(X)
        fit_seconds = time.perf_counter() - start
    with PeakAnonMemory() as transform_memory:
        start = time.perf_counter()
        ae.transform(X)
        transform_seconds = time.perf_counter() - start
    start = time.perf_counter()
    svd = TruncatedSVD(50, random_state=0).fit(X)
    svd_seconds = time.perf_counter() - start
    ae_error, svd_error = error(ae, test), error(svd, test)
    extra = max(fit_memory.extra_bytes, transform_memory.extra_bytes)
    result = {
        "machine": {**machine(), "load_average": list(os.getloadavg())},
        "data": (
            f"generated topic-model documents ({N_TOPICS} topics), "
            f"{X.shape[0]:,} x {X.shape[1]:,}, density {X.nnz / np.prod(X.shape):.4f}"
        ),
        "model": "MLPAutoencoder(50, hidden_layer_sizes=(), max_iter=2)",
        "n_samples": X.shape[0],
        "n_features": X.shape[1],
        "nnz": int(X.nnz),
        "csr_bytes": size,
        "fit_seconds": fit_seconds,
        "fit_extra_bytes": fit_memory.extra_bytes,
        "transform_seconds": transform_seconds,
        "transform_extra_bytes": transform_memory.extra_bytes,
        "fit_rows_per_second": X.shape[0] * ae.n_iter_ / fit_seconds,
        "transform_rows_per_second": X.shape[0] / transform_seconds,
        "budget_bytes": size + BUDGET_BYTES,
        "within_budget": bool(extra <= size + BUDGET_BYTES),
        "svd_seconds": svd_seconds,
        "mse": ae_error,
        "svd_mse": svd_error,
        "mse_ratio": ae_error / svd_error,
    }
    for key, value in result.items():
        if key != "machine":
            print(f"{key}: {value}")
    write_results(args.out / "sparse.json", result)


if __name__ == "__main__":
    main()
