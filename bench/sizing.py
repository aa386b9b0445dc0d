"""How many components? PCA's width against the autoencoder's, per fraction of variance.

For each fraction f, fits ``PCA(n_components=f)`` and ``MLPAutoencoder(
n_components=f)`` (every other parameter at its default: the width search) on
the Fashion-MNIST training images, and records each one's width, the
autoencoder's search (every width tried, its explained variance on the
early-stopping rows and seconds), and both models' explained variance of the
test images. PCA's width for f of the *test* variance (the issue's 24 / 84 /
187) is recorded too.

Each default fit on the 60,000 training images takes about a minute on a
2-core CPU and a search fits several widths: ``--train-size`` takes the first
n training images instead, and the results say which size was used.

With ``--max-time S`` each fraction's whole search gets a budget of S seconds
(``MLPAutoencoder(max_time=S, max_iter=1000)``), shared among the widths it
fits; without it, every width trains the default 18 epochs.

With ``--precision bfloat16`` (or auto) the fits train in bfloat16: more
epochs in the same budget where the CPU has native bfloat16.

Run:  python bench/sizing.py [--fractions 0.8 0.9 0.95] [--train-size 60000]
                             [--max-time 300] [--precision float32]
                             [--out bench/results]

Writes ``sizing.json`` (the table, with the date, machine and versions).
"""

import argparse
import os
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import MLPAutoencoder, _rows, _sizing
from skae.datasets import load_fashion_mnist
from skae.metrics import explained_variance

from common import machine, timed, write_results

warnings.filterwarnings("ignore", category=ConvergenceWarning)

# The goals: the autoencoder's width at most this many components.
GOALS = {0.9: 28, 0.95: 93}
# The search-time goal for one fraction on a 2-core CPU, in seconds.
SECONDS_GOAL = 300


def pca_test_width(X_test, fraction):
    """PCA's width for `fraction` of the test images' variance (fitted on them)."""
    return int(PCA(n_components=fraction, svd_solver="full").fit(X_test).n_components_)


def pca_held_out_width(ae, X_train, fraction):
    """PCA's width for `fraction` on the rows the autoencoder's search measured on.

    PCA is fitted on the other training rows: the search's own upper bound, and
    the like-for-like comparison with the autoencoder's width.
    """
    rows = _rows.held_out_indices(ae._state.history.split).numpy()
    if rows is None:
        return int(
            PCA(n_components=fraction, svd_solver="full").fit(X_train).n_components_
        )
    keep = np.ones(X_train.shape[0], dtype=bool)
    keep[rows] = False
    curve = _sizing._pca_explained(X_train[keep], None, X_train[rows], None)
    return _sizing._width_for(curve, fraction)


def run(fraction, X_train, X_test, random_state, max_time=None, precision="float32"):
    """Size PCA and the autoencoder for one fraction; return the row."""
    pca = PCA(n_components=fraction, svd_solver="full")
    _, pca_seconds = timed(pca.fit, X_train)
    ae = MLPAutoencoder(
        n_components=fraction,
        random_state=random_state,
        max_time=max_time,
        max_iter=18 if max_time is None else 1000,
        precision=precision,
    )
    _, seconds = timed(ae.fit, X_train)
    goal = GOALS.get(fraction)
    row = {
        "fraction": fraction,
        "n_train": int(X_train.shape[0]),
        "n_test": int(X_test.shape[0]),
        "pca_n_components": int(pca.n_components_),
        "pca_held_out_n_components": pca_held_out_width(ae, X_train, fraction),
        "pca_test_n_components": pca_test_width(X_test, fraction),
        "pca_test_explained_variance": explained_variance(pca, X_test),
        "pca_fit_seconds": pca_seconds,
        "autoencoder_n_components": int(ae.n_components_),
        "autoencoder_explained_variance": ae.explained_variance_score_,
        "autoencoder_test_explained_variance": explained_variance(ae, X_test),
        "search_seconds": seconds,
        "search_fits": len(ae.n_components_search_),
        "search": ae.n_components_search_,
        "goal_n_components": goal,
        "goal_met": None if goal is None else ae.n_components_ <= goal,
        "seconds_goal_met": seconds <= SECONDS_GOAL,
        "max_time": max_time,
        "precision": ae.precision_,
    }
    print_row(row)
    return row


def print_row(row):
    """Print one line of the table as soon as it is measured."""
    goal = row["goal_n_components"]
    print(
        f"{row['fraction']:>8}{row['pca_n_components']:>6}"
        f"{row['pca_test_n_components']:>7}{row['autoencoder_n_components']:>5}"
        f"{row['autoencoder_explained_variance']:>9.4f}"
        f"{row['autoencoder_test_explained_variance']:>9.4f}"
        f"  {'' if goal is None else f'<= {goal}':<7}"
        f"{row['search_fits']:>5}{row['search_seconds']:>9.1f}",
        flush=True,
    )


def main(argv=None):
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.8, 0.9, 0.95])
    parser.add_argument(
        "--train-size",
        type=int,
        default=None,
        help="use the first n training images (default: all 60,000)",
    )
    parser.add_argument(
        "--max-time",
        type=float,
        default=None,
        help="time budget of each fraction's whole search, in seconds (max_time)",
    )
    parser.add_argument(
        "--precision",
        choices=["float32", "bfloat16", "auto"],
        default="float32",
        help="MLPAutoencoder's precision (bfloat16 is fast only where native)",
    )
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    for fraction in args.fractions:
        if not 0 < fraction < 1:
            parser.error(f"--fractions {fraction} must be in (0, 1).")

    X_train, _ = load_fashion_mnist(subset="train", download=False)
    X_test, _ = load_fashion_mnist(subset="test", download=False)
    if args.train_size is not None:
        X_train = X_train[: args.train_size]
    print(
        f"{'fraction':>8}{'PCA':>6}{'PCA@te':>7}{'AE':>5}{'AE val':>9}"
        f"{'AE test':>9}  {'goal':<7}{'fits':>5}{'seconds':>9}"
    )
    # Other work on the same cores slows the fits: the seconds say so with this.
    load_before = os.getloadavg()[0]
    rows = []
    for fraction in args.fractions:
        rows.append(
            run(
                fraction,
                X_train,
                X_test,
                args.random_state,
                args.max_time,
                args.precision,
            )
        )
        # Written after every fraction, so that a run cut short keeps its rows.
        write_results(
            args.out / "sizing.json",
            {
                "machine": machine(),
                "dataset": "fashion-mnist",
                "n_train": int(X_train.shape[0]),
                "n_train_available": 60000,
                "random_state": args.random_state,
                "load_average_1min": [load_before, os.getloadavg()[0]],
                "fractions": args.fractions,
                "max_time": args.max_time,
                "precision": args.precision,
                "rows": rows,
            },
        )
    return np.array([row["autoencoder_n_components"] for row in rows])


if __name__ == "__main__":
    main()
