"""A start that only improves: does training from the PCA start get worse first?

For each data set and width, fits the defaults (PCA start, one-cycle, early
stopping) twice, with the PCA paths trained at the full learning rate and at
``skae._training.PCA_PATH_LR_SCALE`` of it (the default), and records the
validation loss of every epoch against the PCA start's on the same held-out
rows: the first epoch that beats the start, how many epochs validate worse
than it, and the test error as a fraction of PCA's. The two variants of a
(data, k) run one after the other, their order alternating.

Data: Fashion-MNIST (``--train-size`` first training images, all 10,000 test
images; Debian's package), the MNIST sample shipped with skae, and scikit-learn's
digits (scaled to [0, 1]; 1,500 training and 297 test images).

Run:  python bench/start.py [--n-components 2 10 32 100] [--max-iter 12]
          [--train-size 20000] [--out bench/results]

Writes ``start.json``.
"""

import argparse
import os
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import MLPAutoencoder, _rows, _training
from skae.datasets import load_fashion_mnist, load_mnist_sample

from common import machine, timed, write_results

warnings.filterwarnings("ignore", category=ConvergenceWarning)

VARIANTS = {"full rate": 1.0, "default": _training.PCA_PATH_LR_SCALE}


def datasets(train_size):
    """Yield (name, X_train, X_test) with values in [0, 1]."""
    X_train, _ = load_fashion_mnist(subset="train")
    X_test, _ = load_fashion_mnist(subset="test")
    yield "fashion-mnist", X_train[:train_size], X_test
    X, _ = load_mnist_sample()
    yield "mnist-sample", X[:4000], X[4000:]
    X = load_digits().data.astype(np.float32) / 16
    yield "digits", X[:1500], X[1500:]


def mse(model, X):
    """Mean squared reconstruction error per entry."""
    return float(np.mean((X - model.inverse_transform(model.transform(X))) ** 2))


def fit_one(X_train, X_test, k, scale, max_iter, random_state):
    """Fit the defaults with the PCA paths at `scale`; return the row."""
    _training.PCA_PATH_LR_SCALE = scale
    ae = MLPAutoencoder(
        n_components=k,
        max_iter=max_iter,
        tol=0,
        n_iter_no_change=max_iter,
        random_state=random_state,
    )
    _, seconds = timed(ae.fit, X_train)
    # The PCA start: PCA of the training rows, scored on the held-out rows.
    rows = _rows.held_out_indices(ae._state.history.split).numpy()
    keep = np.ones(X_train.shape[0], dtype=bool)
    keep[rows] = False
    start = mse(PCA(k, random_state=0).fit(X_train[keep]), X_train[rows])
    losses = [-score for score in ae.validation_scores_]
    better = [epoch for epoch, loss in enumerate(losses, 1) if loss < start]
    return {
        "pca_start_mse": start,
        "validation_mse": losses,
        "first_better_epoch": better[0] if better else None,
        "epochs_worse_than_start": sum(loss >= start for loss in losses),
        "test_mse": mse(ae, X_test),
        "fit_seconds": seconds,
        "load_average": os.getloadavg()[0],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-components", nargs="+", type=int, default=[2, 10, 32, 100])
    parser.add_argument("--max-iter", type=int, default=12)
    parser.add_argument("--train-size", type=int, default=20000)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    default_scale = _training.PCA_PATH_LR_SCALE
    rows = []
    flip = False
    for name, X_train, X_test in datasets(args.train_size):
        for k in args.n_components:
            if k >= X_train.shape[1]:
                continue
            pca_test = mse(PCA(k, random_state=0).fit(X_train), X_test)
            variants = list(VARIANTS.items())
            if flip:
                variants.reverse()
            flip = not flip
            for variant, scale in variants:
                row = fit_one(
                    X_train, X_test, k, scale, args.max_iter, args.random_state
                )
                row.update(
                    data=name,
                    n_components=k,
                    variant=variant,
                    pca_path_lr_scale=scale,
                    ratio=row["test_mse"] / pca_test,
                )
                rows.append(row)
                print(
                    f"{name:13s} k={k:3d} {variant:9s}: first better epoch "
                    f"{row['first_better_epoch']}, {row['epochs_worse_than_start']} "
                    f"worse, test {row['ratio']:.3f} x PCA",
                    flush=True,
                )
    _training.PCA_PATH_LR_SCALE = default_scale
    write_results(
        args.out / "start.json",
        {
            "benchmark": "bench/start.py",
            "max_iter": args.max_iter,
            "train_size": args.train_size,
            "machine": machine(),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
