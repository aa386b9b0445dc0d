"""Imputation of entries missing completely at random: skae against scikit-learn.

Hides 20% and 50% of the entries of scikit-learn's digits (scaled to [0, 1])
and of the first 2,000 and 5,000 Fashion-MNIST training images, and reports the
RMSE on the hidden entries and the seconds of fit + transform for
SimpleImputer(mean), KNNImputer, IterativeImputer (digits only: on 784
features it needs hours) and AutoencoderImputer with its defaults, with the
model it kept (``method_``). Every imputer is warmed up first on a small slice;
on each data set the imputers run in turn, `--repeats` times, and the best time
is kept (the RMSE does not change between runs). The autoencoder imputer then
runs once on all 60,000 training images (20% hidden), to compare its time with
KNNImputer's on 5,000.

Run:  python bench/impute.py [--fashion-rows 2000 5000] [--repeats 2]
      [--full-rows 60000] [--out DIR]
"""

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

from skae import AutoencoderImputer
from skae.datasets import load_fashion_mnist

from common import machine, write_results

warnings.filterwarnings("ignore")
FRACTIONS = (0.2, 0.5)


def hide(X, fraction, seed=0):
    X_missing = X.copy()
    hidden = np.random.RandomState(seed).rand(*X.shape) < fraction
    X_missing[hidden] = np.nan
    return X_missing, hidden


def run(imputer, X, X_missing, hidden):
    start = time.perf_counter()
    X_imputed = imputer.fit_transform(X_missing)
    seconds = time.perf_counter() - start
    rmse = float(np.sqrt(np.mean((X_imputed - X)[hidden] ** 2)))
    return rmse, seconds, getattr(imputer, "method_", None)


def warm_up(with_iterative):
    """Run every imputer once on a small slice (imports, first-call costs)."""
    X = load_digits().data[:200] / 16.0
    X_missing, _ = hide(X, 0.2)
    for _, make in imputers(with_iterative):
        make().fit_transform(X_missing)


def imputers(with_iterative):
    yield "mean", lambda: SimpleImputer()
    yield "KNN", lambda: KNNImputer()
    if with_iterative:
        yield "iterative", lambda: IterativeImputer(random_state=0)
    yield "autoencoder", lambda: AutoencoderImputer(random_state=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion-rows", type=int, nargs="+", default=[2000, 5000])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--full-rows", type=int, default=60000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--full-only",
        action="store_true",
        help="keep the comparison rows of the results file; rerun the full-size fit",
    )
    args = parser.parse_args(argv)
    fashion = load_fashion_mnist(subset="train")[0].astype(np.float64)
    data = {"digits": load_digits().data / 16.0}
    for n_rows in args.fashion_rows:
        data[f"fashion-mnist, first {n_rows:,}"] = fashion[:n_rows]
    path = args.out / "impute.json"
    if args.full_only:
        previous = json.loads(path.read_text())
        data, rows = {}, previous["rows"]
    else:
        previous, rows = {}, []
    warm_up(with_iterative="digits" in data)
    print(f"{'data':<28}{'missing':>8}{'imputer':>13}{'RMSE':>8}{'seconds':>9}")
    for name, X in data.items():
        for fraction in FRACTIONS:
            X_missing, hidden = hide(X, fraction)
            found = {}
            for _ in range(args.repeats):
                for method, make in imputers(with_iterative=name == "digits"):
                    rmse, seconds, kept = run(make(), X, X_missing, hidden)
                    best = found.setdefault(method, (rmse, seconds, kept))
                    found[method] = (rmse, min(seconds, best[1]), kept)
            for method, (rmse, seconds, kept) in found.items():
                row = {
                    "data": name,
                    "n_samples": X.shape[0],
                    "missing": fraction,
                    "imputer": method,
                    "rmse": rmse,
                    "seconds": seconds,
                }
                if kept is not None:
                    row["kept"] = kept
                rows.append(row)
                print(
                    f"{name:<28}{fraction:>8.0%}{method:>13}{rmse:>8.3f}"
                    f"{seconds:>9.1f}  {kept or ''}",
                    flush=True,
                )
    X = fashion[: args.full_rows]
    X_missing, hidden = hide(X, 0.2)
    rmse, seconds, kept = run(AutoencoderImputer(random_state=0), X, X_missing, hidden)
    full = {
        "kept": kept,
        "data": f"fashion-mnist, first {args.full_rows:,}",
        "n_samples": X.shape[0],
        "missing": 0.2,
        "imputer": "autoencoder",
        "rmse": rmse,
        "seconds": seconds,
    }
    print(
        f"{full['data']:<28}{0.2:>8.0%}{'autoencoder':>13}{rmse:>8.3f}{seconds:>9.1f}"
    )
    write_results(
        path,
        {
            **previous,
            "machine": {**machine(), "load_average": list(os.getloadavg())},
            "repeats": args.repeats,
            "rows": rows,
            "full": full,
        },
    )


if __name__ == "__main__":
    main()
