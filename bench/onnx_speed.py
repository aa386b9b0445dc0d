"""Transform throughput: onnxruntime against skae's own transform and against PCA.

For the chapter's model (784-256-128-100, sigmoid) and the defaults
(``MLPAutoencoder(n_components=30)``: 784-512-256-30 GELU beside a PCA linear
path), each beside a PCA of the same width, times ``transform`` in batches of
1, 256 and 60,000 rows: skae's ``transform`` and scikit-learn's PCA
``transform`` in Python, and both exported with skl2onnx and served by
onnxruntime. Single-row latency is what a serving endpoint sees.

The data is uniform noise in [0, 1] of MNIST's shape: only inference is timed,
so the models are fitted for one epoch on 5,000 rows, which sets every weight
as a long fit would without taking its time. Each timing is the best of
``--repeats`` runs after a warm-up, the compared rows interleaved within each
run so that a busy moment of the machine hits them alike. torch and
onnxruntime get ``--threads`` threads each, one by default: a serving process
often runs one per worker, and on a machine shared with other work,
multi-threaded timings measure mostly the others (OpenMP barriers and
onnxruntime's spinning threads wait on preempted threads: in a trial on a
busy 2-core machine, two threads ran skae's transform of 256 rows 4 to 12 times
slower than one, and onnxruntime's 3 times slower). BLAS under scikit-learn's
PCA is limited alike, with threadpoolctl. Prints rows/s, microseconds per call
and ratios; writes ``onnx.json`` into ``--out``.

Run:  python bench/onnx_speed.py [--repeats 5] [--threads 1] [--out bench/results]

(Not bench/onnx.py: a script's folder comes first on sys.path, so that name
would shadow the onnx package for every import of it.)
"""

import argparse
import os
import re
import subprocess
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import skl2onnx
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import skae.onnx
from skae import MLPAutoencoder
from skae._presets import CHAPTER_PARAMS

from common import machine, timed, write_results

warnings.filterwarnings("ignore", category=ConvergenceWarning)

BATCH_SIZES = (1, 256, 60_000)
# Single rows take microseconds: each timing covers this many calls.
CALLS = {1: 300, 256: 20, 60_000: 1}


def cpu_flags():
    """The CPU's AVX-512 flags (from lscpu), which decide onnxruntime's kernels."""
    try:
        text = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return sorted(set(re.findall(r"avx512[a-z_0-9]*", text)))


def session_for(model, n_threads):
    """An onnxruntime CPU session for `model` with `n_threads` intra-op threads."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = n_threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def runners(name, estimator, X_sample, n_threads):
    """Return {(model, runtime): function of X} for the estimator and its ONNX."""
    if isinstance(estimator, MLPAutoencoder):
        model = skae.onnx.to_onnx(estimator, X_sample)
    else:
        model = skl2onnx.to_onnx(estimator, X_sample)
    session = session_for(model, n_threads)
    input_name = session.get_inputs()[0].name

    def served(X):
        return session.run(None, {input_name: X})[0]

    python = "skae" if isinstance(estimator, MLPAutoencoder) else "scikit-learn"
    return {(name, python): estimator.transform, (name, "onnxruntime"): served}


def seconds_per_call(function, X, calls):
    """Seconds per call of `function(X)`, averaged over `calls` calls."""

    def call_repeatedly():
        for _ in range(calls):
            function(X)

    return timed(call_repeatedly)[1] / calls


def main(argv=None):
    """Fit, export, check parity, time, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fit-rows", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    with threadpool_limits(limits=args.threads):
        measure(args)


def measure(args):
    """Run the whole benchmark with the parsed arguments."""
    rng = np.random.default_rng(0)
    X = rng.random((max(BATCH_SIZES), 784), dtype=np.float32)
    X_fit = X[: args.fit_rows]
    torch.set_num_threads(args.threads)
    n_threads = args.threads
    estimators = {
        "chapter": MLPAutoencoder(**{**CHAPTER_PARAMS, "max_iter": 1}),
        "PCA 100": PCA(n_components=100),
        "defaults": MLPAutoencoder(n_components=30, max_iter=1),
        "PCA 30": PCA(n_components=30),
    }
    functions = {}
    for name, estimator in estimators.items():
        estimator.set_params(random_state=0).fit(X_fit)
        functions.update(runners(name, estimator, X[:1], n_threads))

    # The timings mean something only if both runtimes compute the same codes.
    for name, estimator in estimators.items():
        python = "skae" if isinstance(estimator, MLPAutoencoder) else "scikit-learn"
        np.testing.assert_allclose(
            functions[name, "onnxruntime"](X[:1000]),
            functions[name, python](X[:1000]),
            rtol=1e-4,
            atol=1e-4,
        )

    # Other processes on the machine make every timing slower: say how busy it was.
    load_before = os.getloadavg()[0]
    best = {}
    for batch_size in BATCH_SIZES:
        batch = X[:batch_size]
        calls = CALLS[batch_size]
        for function in functions.values():
            function(batch)
        for _ in range(args.repeats):
            for key, function in functions.items():
                seconds = seconds_per_call(function, batch, calls)
                best[key, batch_size] = min(
                    best.get((key, batch_size), np.inf), seconds
                )

    load_after = os.getloadavg()[0]
    rows = []
    print(f"{'model':10} {'runtime':13} {'batch':>7} {'rows/s':>12} {'us/call':>10}")
    for batch_size in BATCH_SIZES:
        for (name, runtime), _ in functions.items():
            seconds = best[(name, runtime), batch_size]
            rows.append(
                {
                    "model": name,
                    "runtime": runtime,
                    "batch_size": batch_size,
                    "rows_per_s": batch_size / seconds,
                    "seconds_per_call": seconds,
                }
            )
            print(
                f"{name:10} {runtime:13} {batch_size:>7,} "
                f"{batch_size / seconds:>12,.0f} {seconds * 1e6:>10,.1f}"
            )

    ratios = []
    print("\nonnxruntime's speed-up over the Python transform; skae against PCA:")
    for batch_size in BATCH_SIZES:
        for name, pca in (("chapter", "PCA 100"), ("defaults", "PCA 30")):
            skae_seconds = best[(name, "skae"), batch_size]
            onnx_seconds = best[(name, "onnxruntime"), batch_size]
            pca_seconds = best[(pca, "onnxruntime"), batch_size]
            ratio = {
                "model": name,
                "batch_size": batch_size,
                "onnx_speedup": skae_seconds / onnx_seconds,
                "pca_speedup": best[(pca, "scikit-learn"), batch_size] / pca_seconds,
                "onnx_time_vs_pca_onnx": onnx_seconds / pca_seconds,
            }
            ratios.append(ratio)
            print(
                f"{name:10} batch {batch_size:>7,}: onnxruntime "
                f"{ratio['onnx_speedup']:.2f}x skae's transform; PCA onnxruntime "
                f"{ratio['pca_speedup']:.2f}x its transform; skae in onnxruntime "
                f"takes {ratio['onnx_time_vs_pca_onnx']:.1f}x the time of {pca}"
            )

    result = {
        "machine": {
            **machine(),
            "cpu_flags": cpu_flags(),
            "onnxruntime": onnxruntime.__version__,
            "onnxruntime_threads": n_threads,
            "skl2onnx": skl2onnx.__version__,
            "load_average_1min": [load_before, load_after],
        },
        "data": "uniform noise, 784 features, float32; fitted 1 epoch on "
        f"{args.fit_rows:,} rows",
        "repeats": args.repeats,
        "calls_per_timing": {str(size): calls for size, calls in CALLS.items()},
        "rows": rows,
        "ratios": ratios,
    }
    print(
        f"load average (1 min) {load_before:.1f} before timing, {load_after:.1f} after"
    )
    write_results(args.out / "onnx.json", result)


if __name__ == "__main__":
    main()
