"""Is the default MLPAutoencoder better than PCA? Test error against n_components.

Fits PCA and ``MLPAutoencoder(n_components=k)`` (every other parameter at its
default) for each k on the training images, measures the mean squared
reconstruction error on the test images, and prints a table of errors, the
ratio autoencoder / PCA and the fit times, all measured in this one run.

Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package (``make
bench-data``) or OpenML; the MNIST sample ships with skae.

Run:  python bench/quality.py [--datasets fashion-mnist mnist-sample]
                              [--n-components 2 10 30 100] [--out bench/results]

Writes ``quality.json`` (the table, with the date, machine and versions) and
``quality.png`` (error against n_components) into ``--out``.
"""

import argparse
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import MLPAutoencoder
from skae.datasets import load_fashion_mnist, load_mnist_sample
from skae.plotting import plot_error_vs_components

from common import machine, timed, write_results

warnings.filterwarnings("ignore", category=ConvergenceWarning)

# The goals: autoencoder error at most this fraction of PCA's.
GOALS = {2: 0.5, 10: 0.5, 30: 0.5, 100: 0.6}


def load(name):
    """Return (X_train, X_test) with pixels in [0, 1]."""
    if name == "fashion-mnist":
        X_train, _ = load_fashion_mnist(subset="train")
        X_test, _ = load_fashion_mnist(subset="test")
        return X_train, X_test
    if name == "mnist-sample":
        X, _ = load_mnist_sample()
        return X[:4000], X[4000:]
    raise ValueError(f"unknown dataset {name!r}")


def held_out_mse(model, X):
    """Mean squared reconstruction error per entry."""
    return float(np.mean((X - model.inverse_transform(model.transform(X))) ** 2))


def run(dataset, ks, random_state):
    """Fit PCA and the default autoencoder at each k; return one row per k."""
    X_train, X_test = load(dataset)
    rows = []
    for k in ks:
        pca = PCA(n_components=k, random_state=random_state)
        _, pca_seconds = timed(pca.fit, X_train)
        ae = MLPAutoencoder(n_components=k, random_state=random_state)
        _, ae_seconds = timed(ae.fit, X_train)
        row = {
            "dataset": dataset,
            "n_train": int(X_train.shape[0]),
            "n_test": int(X_test.shape[0]),
            "n_components": k,
            "pca_mse": held_out_mse(pca, X_test),
            "autoencoder_mse": held_out_mse(ae, X_test),
            "pca_fit_seconds": pca_seconds,
            "autoencoder_fit_seconds": ae_seconds,
            "autoencoder_epochs": int(ae.n_iter_),
        }
        row["ratio"] = row["autoencoder_mse"] / row["pca_mse"]
        row["goal"] = GOALS.get(k) if dataset == "fashion-mnist" else None
        rows.append(row)
        print_row(row)
    return rows


def print_row(row):
    """Print one line of the table as soon as it is measured."""
    goal = row["goal"]
    verdict = "" if goal is None else ("met" if row["ratio"] <= goal else "MISSED")
    print(
        f"{row['dataset']:<14}{row['n_components']:>4}"
        f"{row['pca_mse']:>11.5f}{row['autoencoder_mse']:>11.5f}"
        f"{row['ratio']:>8.3f}  {'' if goal is None else f'<= {goal}':<8}"
        f"{verdict:<7}{row['pca_fit_seconds']:>7.1f}"
        f"{row['autoencoder_fit_seconds']:>8.1f}{row['autoencoder_epochs']:>7}",
        flush=True,
    )


def main(argv=None):
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", nargs="+", default=["fashion-mnist", "mnist-sample"]
    )
    parser.add_argument("--n-components", nargs="+", type=int, default=[2, 10, 30, 100])
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)

    print(
        f"{'dataset':<14}{'k':>4}{'PCA MSE':>11}{'AE MSE':>11}{'AE/PCA':>8}  "
        f"{'goal':<8}{'':<7}{'PCA s':>7}{'AE s':>8}{'epochs':>7}"
    )
    rows = []
    for dataset in args.datasets:
        rows += run(dataset, args.n_components, args.random_state)

    write_results(args.out / "quality.json", {"machine": machine(), "rows": rows})
    plot(rows, args.out / "quality.png")
    print(f"wrote {args.out / 'quality.png'}")


def plot(rows, path):
    """Test error against n_components, one panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    datasets = sorted({row["dataset"] for row in rows})
    fig, axes = plt.subplots(
        1, len(datasets), figsize=(5 * len(datasets), 4), layout="constrained"
    )
    for ax, dataset in zip(np.atleast_1d(axes), datasets, strict=True):
        mine = [row for row in rows if row["dataset"] == dataset]
        table = pd.DataFrame(
            [
                {"model": name, "n_components": row["n_components"], "test_mse": mse}
                for row in mine
                for name, mse in (
                    ("PCA", row["pca_mse"]),
                    ("MLPAutoencoder (defaults)", row["autoencoder_mse"]),
                )
            ]
        )
        plot_error_vs_components(table, ax=ax)
        ax.set_title(f"{dataset}: test MSE")
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
