"""Is the default autoencoder ever worse than PCA on test rows, and how often better?

A battery of data sets, each scaled with StandardScaler fitted on the training
rows, at several code widths and three seeds: scikit-learn's small tabular sets
(wine, breast cancer, diabetes; 70/30 splits) and 8x8 digits, and generated
ones of 100 to 3,000 rows: low-rank data with noise, heavy-tailed data, binary
data and curved manifolds. For each fit it records the test mean squared error
as a fraction of PCA's (fitted on the same training rows) for three ways of
deciding between the network and PCA, side by side:

- ``default``: the defaults (on up to 1,000 rows, 5-fold cross-validation of
  the network against PCA and of the number of epochs; above, the rows early
  stopping holds out);
- ``held-out rule``: ``early_stopping=True``, the held-out rows at any size
  (the default rule before cross-validation);
- ``no rule``: ``early_stopping=False``, every epoch trained and the network
  kept whatever it scores.

With each ratio goes its standard error over the test rows (from the per-row
differences of error, network minus PCA, as the library's own test against PCA
computes it), so that a loss or a win can be told from the noise of a few
dozen test rows. It also records whether the default fit returned PCA itself,
and its seconds. The summary gives, per way of deciding, the worst and median
ratio and how many fits lost or won by more than two standard errors; and the
median of the best ratio any of them (or PCA) reached on each fit, which no
rule that chooses among them could beat.

All data are generated here (or shipped with scikit-learn): nothing is
downloaded.

Run:  python bench/never_worse.py [--seeds 3] [--out DIR]
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skae import MLPAutoencoder
from skae._crossval import MAX_ROWS
from skae.metrics import _ratio_standard_error

from common import machine, write_results

warnings.filterwarnings("ignore", category=ConvergenceWarning)


def low_rank(rng, n_samples, n_features=50, rank=10, noise=0.3):
    return rng.randn(n_samples, rank) @ rng.randn(rank, n_features) + (
        noise * rng.randn(n_samples, n_features)
    )


def heavy_tailed(rng, n_samples):
    return rng.standard_t(2, size=(n_samples, 10)) @ rng.randn(10, 30)


def binary(rng, n_samples):
    logits = rng.randn(n_samples, 5) @ rng.randn(5, 40)
    return (rng.rand(n_samples, 40) < 1 / (1 + np.exp(-logits))).astype(float)


def manifold(rng, n_samples):
    """A rolled sheet in 3-D, embedded in 20 dimensions, plus a little noise."""
    t = 1.5 * np.pi * (1 + 2 * rng.rand(n_samples))
    height = 10 * rng.rand(n_samples)
    sheet = np.column_stack([t * np.cos(t), height, t * np.sin(t)])
    embedding = np.linalg.qr(rng.randn(20, 3))[0].T
    return sheet @ embedding + 0.05 * rng.randn(n_samples, 20)


def digits(rng, n_samples):
    X = load_digits().data / 16.0
    return X[rng.permutation(len(X))[:n_samples]]


def shipped(load):
    """A scikit-learn data set, its rows in a new order for each seed."""

    def make(rng):
        X = load().data.astype(float)
        return X[rng.permutation(len(X))]

    return make


def curved(rng, n_samples, n_features=20):
    """Points on a 2-D sphere's cap bent through 6 dimensions, embedded in more."""
    angles = rng.rand(n_samples, 2) * np.array([np.pi / 2, 2 * np.pi])
    points = np.column_stack(
        [
            np.sin(angles[:, 0]) * np.cos(angles[:, 1]),
            np.sin(angles[:, 0]) * np.sin(angles[:, 1]),
            np.cos(angles[:, 0]),
        ]
    )
    bent = np.column_stack([points, points**2])
    embedding = np.linalg.qr(rng.randn(n_features, 6))[0].T
    return bent @ embedding + 0.05 * rng.randn(n_samples, n_features)


# Small: the training rows of the sets the default cross-validates.
SMALL = MAX_ROWS

# name -> (generator, training rows (the rest are test rows), widths)
BATTERY = {
    "wine, 178 rows": (shipped(load_wine), 124, (2, 5)),
    "breast cancer, 569 rows": (shipped(load_breast_cancer), 398, (2, 5)),
    "diabetes, 442 rows": (shipped(load_diabetes), 309, (2, 5)),
    "low rank, 150 rows": (lambda rng: low_rank(rng, 150), 100, (2, 5)),
    "curved, 500 rows": (lambda rng: curved(rng, 500), 350, (2, 3)),
    "heavy tails, 1,000 rows": (lambda rng: heavy_tailed(rng, 1000), 700, (2, 5)),
    "low rank, 300 rows": (lambda rng: low_rank(rng, 300), 210, (2, 5, 10)),
    "low rank, 3,000 rows": (lambda rng: low_rank(rng, 3000), 2100, (2, 5, 10)),
    "heavy tails, 3,000 rows": (lambda rng: heavy_tailed(rng, 3000), 2100, (2, 5)),
    "binary, 1,000 rows": (lambda rng: binary(rng, 1000), 700, (2, 5, 10)),
    "rolled sheet, 2,000 rows": (lambda rng: manifold(rng, 2000), 1400, (1, 2, 3)),
    "digits 8x8, 1,797 rows": (lambda rng: digits(rng, 1797), 1300, (2, 10, 30)),
}


# Ratios within this of 1 are float32 rounding, not a loss or a win.
ROUNDING = 1e-4

STRATEGIES = {
    "default": {},
    "held-out rule": {"early_stopping": True},
    "no rule": {"early_stopping": False},
}


def row_errors(model, X):
    """Return the mean squared error of reconstructing each row of X."""
    return np.mean((X - model.inverse_transform(model.transform(X))) ** 2, axis=1)


def compared(errors, pca_errors):
    """Return (ratio of mean errors, its standard error over the rows).

    The standard error is that of the mean per-row difference (model minus
    PCA), as a fraction of PCA's mean error.
    """
    ratio = float(np.mean(errors) / np.mean(pca_errors))
    return ratio, _ratio_standard_error(errors, pca_errors)


def summary(rows, strategy):
    """Return a strategy's worst and median ratio over `rows`, and its clear
    losses and wins: beyond two standard errors, and beyond float32 rounding
    (a fit that returned PCA differs from it by about 1e-7, with a standard
    error smaller still)."""
    ratios = np.array([row["ratios"][strategy] for row in rows])
    margins = np.maximum(
        2 * np.array([row["standard_errors"][strategy] for row in rows]), ROUNDING
    )
    return {
        "worst": float(ratios.max()),
        "median": float(np.median(ratios)),
        "losses beyond 2 SE": int(np.sum(ratios - 1 > margins)),
        "wins beyond 2 SE": int(np.sum(1 - ratios > margins)),
    }


def best_possible(rows):
    """Median over `rows` of the best ratio any way of deciding, or PCA, got."""
    return float(np.median([min(1.0, *row["ratios"].values()) for row in rows]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    rows = []
    header = "".join(f"{name:>15}" for name in STRATEGIES)
    print(f"{'data':<26}{'k':>4}{'seed':>6}{header}{'PCA?':>6}{'fit s':>8}")
    for name, (make, n_train, widths) in BATTERY.items():
        for seed in range(args.seeds):
            X = make(np.random.RandomState(seed))
            scaler = StandardScaler().fit(X[:n_train])
            X_train, X_test = (
                scaler.transform(X[:n_train]),
                scaler.transform(X[n_train:]),
            )
            for k in widths:
                pca = PCA(k, svd_solver="full").fit(X_train)
                pca_errors = row_errors(pca, X_test)
                ratios, standard_errors, fitted = {}, {}, {}
                for strategy, params in STRATEGIES.items():
                    start = time.perf_counter()
                    ae = MLPAutoencoder(k, random_state=seed, **params).fit(X_train)
                    seconds = time.perf_counter() - start
                    ratios[strategy], standard_errors[strategy] = compared(
                        row_errors(ae, X_test), pca_errors
                    )
                    fitted[strategy] = (ae, seconds)
                ae, seconds = fitted["default"]
                # Whether the fit returned PCA: its codes span PCA's subspace.
                returned_pca = bool(
                    np.allclose(
                        ae.reconstruct(X_test),
                        pca.inverse_transform(pca.transform(X_test)),
                        atol=1e-4,
                    )
                )
                rows.append(
                    {
                        "data": name,
                        "n_train": n_train,
                        "n_components": k,
                        "seed": seed,
                        "ratio": ratios["default"],
                        "ratios": ratios,
                        "standard_errors": standard_errors,
                        "returned_pca": returned_pca,
                        "fit_seconds": seconds,
                    }
                )
                cells = "".join(f"{ratios[name]:>15.3f}" for name in STRATEGIES)
                print(
                    f"{name:<26}{k:>4}{seed:>6}{cells}"
                    f"{'yes' if returned_pca else '':>6}{seconds:>8.2f}"
                )
    small = [row for row in rows if row["n_train"] <= SMALL]
    groups = (("small", small), ("all", rows))
    summaries = {
        group: {strategy: summary(members, strategy) for strategy in STRATEGIES}
        for group, members in groups
    }
    best = {group: best_possible(members) for group, members in groups}
    for group, by_strategy in summaries.items():
        for strategy, values in by_strategy.items():
            print(
                f"{group}, {strategy}: worst {values['worst']:.4f}, median "
                f"{values['median']:.4f}, losses beyond 2 SE "
                f"{values['losses beyond 2 SE']} of {len(dict(groups)[group])}, "
                f"wins {values['wins beyond 2 SE']}"
            )
        print(f"{group}: median of the best ratio per fit {best[group]:.4f}")
    write_results(
        args.out / "never_worse.json",
        {
            "machine": machine(),
            "seeds": args.seeds,
            "small_rows": SMALL,
            "strategies": {name: params for name, params in STRATEGIES.items()},
            "summary": summaries,
            "best possible median": best,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
