"""Is the default autoencoder ever worse than PCA on held-out data?

A battery of data sets, each scaled with StandardScaler fitted on the training
rows, at several code widths and three seeds: small and large low-rank data
with noise, heavy-tailed data, binary data, a curved manifold, and images
(scikit-learn's 8x8 digits). For each it prints and records the defaults'
held-out mean squared error as a fraction of PCA's (fitted on the same
training rows), whether the fit returned PCA itself, and the fit's seconds.

All data are generated here (or shipped with scikit-learn): nothing is
downloaded.

Run:  python bench/never_worse.py [--seeds 3] [--out DIR]
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skae import MLPAutoencoder

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


# name -> (generator, rows in all, of which training rows, widths)
BATTERY = {
    "low rank, 300 rows": (lambda rng: low_rank(rng, 300), 210, (2, 5, 10)),
    "low rank, 3,000 rows": (lambda rng: low_rank(rng, 3000), 2100, (2, 5, 10)),
    "heavy tails, 3,000 rows": (lambda rng: heavy_tailed(rng, 3000), 2100, (2, 5)),
    "binary, 1,000 rows": (lambda rng: binary(rng, 1000), 700, (2, 5, 10)),
    "rolled sheet, 2,000 rows": (lambda rng: manifold(rng, 2000), 1400, (1, 2, 3)),
    "digits 8x8, 1,797 rows": (lambda rng: digits(rng, 1797), 1300, (2, 10, 30)),
}


def mse(model, X):
    return float(np.mean((X - model.inverse_transform(model.transform(X))) ** 2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'data':<26}{'k':>4}{'seed':>6}{'AE/PCA':>9}{'PCA?':>6}{'fit s':>8}")
    for name, (make, n_train, widths) in BATTERY.items():
        for seed in range(args.seeds):
            X = make(np.random.RandomState(seed))
            scaler = StandardScaler().fit(X[:n_train])
            X_train, X_test = (
                scaler.transform(X[:n_train]),
                scaler.transform(X[n_train:]),
            )
            for k in widths:
                pca = PCA(k).fit(X_train)
                start = time.perf_counter()
                ae = MLPAutoencoder(k, random_state=seed).fit(X_train)
                seconds = time.perf_counter() - start
                ratio = mse(ae, X_test) / mse(pca, X_test)
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
                        "ratio": ratio,
                        "returned_pca": returned_pca,
                        "fit_seconds": seconds,
                    }
                )
                print(
                    f"{name:<26}{k:>4}{seed:>6}{ratio:>9.3f}"
                    f"{'yes' if returned_pca else '':>6}{seconds:>8.1f}"
                )
    worst = max(rows, key=lambda row: row["ratio"])
    print(
        f"worst: {worst['ratio']:.4f} ({worst['data']}, k={worst['n_components']}, "
        f"seed {worst['seed']})"
    )
    write_results(
        args.out / "never_worse.json",
        {"machine": machine(), "seeds": args.seeds, "rows": rows},
    )


if __name__ == "__main__":
    main()
