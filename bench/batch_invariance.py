"""What batch-invariant inference costs: fixed-shape chunks against plain batches.

skae runs inference on chunks of exactly ``INFERENCE_CHUNK_ROWS`` rows, copied
into one aligned buffer and the last one padded, so that a row's result has the
same bits whichever rows come with it. The alternative is what a plain torch
loop does: the module on batches of 4,096 rows, the last one shorter. Both run
the same fitted default encoder (784-512-256-30 with its PCA path, without
``transform``'s validation, which both would share) over one row and over
60,000 rows, warmed up, interleaved, best of ``--rounds``. The 60,000
rows are the 5,000 digits of skae's MNIST sample repeated 12 times (timing does
not depend on the values). Each way's invariance is measured too: how many of
20 rows get the same bits alone as inside the first 1,000 rows.

Run:  python bench/batch_invariance.py [--rounds 5] [--out bench/results]

Writes ``batch_invariance.json``.
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from skae import MLPAutoencoder
from skae._training import INFERENCE_CHUNK_ROWS, apply_in_batches
from skae.datasets import load_mnist_sample

from common import interleaved_best, machine, write_results

PLAIN_BATCH = 4096
ONE_ROW_CALLS = 50


def plain_batches(module, X):
    """The module over batches of PLAIN_BATCH rows, as a plain torch loop runs it."""
    out = []
    with torch.inference_mode():
        for start in range(0, X.shape[0], PLAIN_BATCH):
            batch = torch.from_numpy(
                np.ascontiguousarray(X[start : start + PLAIN_BATCH])
            )
            out.append(module(batch).numpy())
    return np.concatenate(out)


def timed(function, X, calls=1):
    def run():
        start = time.perf_counter()
        for _ in range(calls):
            result = function(X)
        return result, (time.perf_counter() - start) / calls

    return run


def bit_equal_rows(function, X, n_rows=20):
    together = function(X[:1000])
    alone = np.concatenate([function(X[i : i + 1]) for i in range(n_rows)])
    return int((alone == together[:n_rows]).all(axis=1).sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()

    X_sample, _ = load_mnist_sample()
    X_sample = X_sample.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae = MLPAutoencoder(30, max_iter=1, random_state=0).fit(X_sample)
    X = np.tile(X_sample, (12, 1))
    encoder = ae.encoder_.eval()
    ways = {
        "fixed chunks (skae)": lambda rows: apply_in_batches(encoder, rows),
        "plain batches": lambda rows: plain_batches(encoder, rows),
    }
    contenders = {}
    for name, function in ways.items():
        contenders[(name, "one row")] = timed(function, X[:1], calls=ONE_ROW_CALLS)
        contenders[(name, "60,000 rows")] = timed(function, X)
    best = interleaved_best(contenders, args.rounds)
    invariance = {name: bit_equal_rows(function, X) for name, function in ways.items()}
    rows = []
    for name in ways:
        for size in ("one row", "60,000 rows"):
            seconds = best[(name, size)][1]
            baseline = best[("plain batches", size)][1]
            rows.append(
                {
                    "way": name,
                    "rows": size,
                    "seconds": seconds,
                    "vs_plain_batches": seconds / baseline,
                    "bit_equal_of_20": invariance[name],
                }
            )
            print(
                f"{name:20s} {size:12s} {seconds * 1e3:9.2f} ms "
                f"x{seconds / baseline:.2f} plain; "
                f"{rows[-1]['bit_equal_of_20']}/20 rows bit-equal alone"
            )
    write_results(
        args.out / "batch_invariance.json",
        {
            "benchmark": "bench/batch_invariance.py",
            "machine": machine(),
            "chunk_rows": INFERENCE_CHUNK_ROWS,
            "plain_batch_rows": PLAIN_BATCH,
            "rounds": args.rounds,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
