"""Loaders, on files the tests write themselves; OpenML is mocked, never reached."""

import gzip
import struct
from urllib.error import URLError

import numpy as np
import pytest
import sklearn.datasets
from numpy.testing import assert_array_equal

from skae.datasets import (
    load_fashion_mnist,
    load_mnist,
    load_mnist_sample,
    read_idx,
    read_mnist_csv,
)


@pytest.fixture
def digits():
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(6, 784)).astype(np.uint8)
    labels = np.array([3, 1, 4, 1, 5, 9])
    return images, labels


def write_csv(path, images, labels, header=True):
    lines = []
    if header:
        lines.append(
            "label," + ",".join(f"{i}x{j}" for i in range(28) for j in range(28))
        )
    for image, label in zip(images, labels, strict=True):
        lines.append(",".join(map(str, [label, *image])))
    path.write_text("\n".join(lines) + "\n")
    return path


def idx_bytes(array):
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_pair(directory, prefix, images, labels, gz=False):
    suffix = ".gz" if gz else ""
    opener = gzip.open if gz else open
    for kind, array in [
        ("images-idx3", images.reshape(-1, 28, 28)),
        ("labels-idx1", labels),
    ]:
        with opener(directory / f"{prefix}-{kind}-ubyte{suffix}", "wb") as f:
            f.write(idx_bytes(array))


# promise: chapter.rst / The data
def test_mnist_sample_is_real_balanced_digits():
    X, y = load_mnist_sample()
    assert X.shape == (5000, 784) and X.dtype == np.float32
    assert X.min() == 0 and X.max() == 1
    assert_array_equal(np.bincount(y), [500] * 10)
    # Shuffled: the first images are not all one digit.
    assert len(set(y[:20])) > 5
    raw, _ = load_mnist_sample(as_uint8=True)
    assert raw.dtype == np.uint8
    assert_array_equal(raw.astype(np.float32) / 255, X)


@pytest.mark.parametrize("header", [True, False])
def test_read_chapter_csv(tmp_path, digits, header):
    path = write_csv(tmp_path / "mnist_train.csv", *digits, header=header)
    images, labels = read_mnist_csv(path)
    assert_array_equal(images, digits[0])
    assert_array_equal(labels, digits[1])


def test_load_mnist_from_a_directory_of_csv_files(tmp_path, digits):
    write_csv(tmp_path / "mnist_train.csv", *digits)
    write_csv(tmp_path / "mnist_test.csv", digits[0][:2], digits[1][:2])
    X, y = load_mnist(tmp_path)
    assert X.shape == (6, 784) and X.dtype == np.float32
    assert_array_equal(X, digits[0] / np.float32(255))
    assert_array_equal(y, digits[1])
    X_test, y_test = load_mnist(tmp_path, subset="test", as_uint8=True)
    assert_array_equal(X_test, digits[0][:2])
    assert_array_equal(y_test, [3, 1])
    X_all, y_all = load_mnist(tmp_path, subset="all")
    assert X_all.shape == (8, 784)
    assert_array_equal(y_all, [3, 1, 4, 1, 5, 9, 3, 1])


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_from_idx_files(tmp_path, digits, gz):
    write_idx_pair(tmp_path, "train", *digits, gz=gz)
    X, y = load_mnist(tmp_path, as_uint8=True)
    assert_array_equal(X, digits[0])
    assert_array_equal(y, digits[1])
    suffix = ".gz" if gz else ""
    X_file, _ = load_mnist(tmp_path / f"train-images-idx3-ubyte{suffix}")
    assert X_file.shape == (6, 784)


def test_load_fashion_mnist_from_a_path(tmp_path, digits):
    write_idx_pair(tmp_path, "t10k", *digits, gz=True)
    X, y = load_fashion_mnist(tmp_path, subset="test")
    assert X.shape == (6, 784)
    assert_array_equal(y, digits[1])


# promise: chapter.rst / The data
def test_load_fashion_mnist_prefers_the_debian_package_directory(
    tmp_path, digits, monkeypatch
):
    from skae import datasets

    write_idx_pair(tmp_path, "train", *digits, gz=True)
    monkeypatch.setattr(datasets, "FASHION_MNIST_SYSTEM_DIR", tmp_path)
    monkeypatch.setattr(sklearn.datasets, "fetch_openml", pytest.fail)
    X, _ = load_fashion_mnist(data_home=tmp_path / "empty-cache")
    assert X.shape == (6, 784)


def test_openml_fetch_goes_to_the_cache_and_splits(tmp_path, monkeypatch):
    calls = {}

    def fake_fetch_openml(name, **kwargs):
        calls.update(name=name, **kwargs)
        images = np.zeros((70_000, 784), dtype=np.float64)
        images[60_000:] = 255
        labels = np.array([str(i % 10) for i in range(70_000)], dtype=object)
        return images, labels

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", fake_fetch_openml)
    X, y = load_mnist(subset="test", data_home=tmp_path)
    assert calls["name"] == "mnist_784"
    assert calls["data_home"] == tmp_path
    assert X.shape == (10_000, 784) and X.min() == 1
    assert y.dtype == np.int64 and y[0] == 0
    X_train, _ = load_mnist(subset="train", data_home=tmp_path)
    assert X_train.shape == (60_000, 784) and X_train.max() == 0


def test_offline_with_nothing_local_says_which_files_to_put_where(
    tmp_path, monkeypatch
):
    def offline(*args, **kwargs):
        raise URLError("network unreachable")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", offline)
    with pytest.raises(FileNotFoundError, match="fetching it from OpenML failed") as e:
        load_mnist(data_home=tmp_path)
    message = str(e.value)
    assert "mnist_train.csv" in message
    assert "train-images-idx3-ubyte" in message
    assert str(tmp_path / "mnist") in message


def test_download_false_never_fetches(tmp_path, monkeypatch):
    monkeypatch.setattr(sklearn.datasets, "fetch_openml", pytest.fail)
    with pytest.raises(FileNotFoundError, match="download=False"):
        load_mnist(data_home=tmp_path, download=False)


def test_cache_directory_is_used_before_openml(tmp_path, digits, monkeypatch):
    (tmp_path / "mnist").mkdir()
    write_csv(tmp_path / "mnist" / "mnist_train.csv", *digits)
    monkeypatch.setattr(sklearn.datasets, "fetch_openml", pytest.fail)
    X, _ = load_mnist(data_home=tmp_path)
    assert X.shape == (6, 784)


# Bad files: a clear error naming the file and the problem.


def test_csv_with_a_wrong_column_count(tmp_path, digits):
    path = write_csv(tmp_path / "bad.csv", digits[0][:, :780], digits[1])
    with pytest.raises(ValueError, match=r"bad\.csv: expected 785 columns.*found 781"):
        read_mnist_csv(path)


def test_csv_with_a_ragged_row(tmp_path, digits):
    path = write_csv(tmp_path / "ragged.csv", *digits)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0]
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"ragged\.csv: not an MNIST CSV file"):
        read_mnist_csv(path)


def test_csv_with_non_numeric_cells(tmp_path, digits):
    path = write_csv(tmp_path / "text.csv", *digits)
    path.write_text(path.read_text().replace(",17,", ",seventeen,", 1))
    with pytest.raises(ValueError, match=r"text\.csv: not an MNIST CSV file"):
        read_mnist_csv(path)


def test_csv_with_pixels_out_of_range(tmp_path, digits):
    images = digits[0].astype(int)
    images[0, 0] = 300
    path = write_csv(tmp_path / "range.csv", images, digits[1])
    with pytest.raises(ValueError, match=r"range\.csv: pixel values must be"):
        read_mnist_csv(path)


def test_empty_csv(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(ValueError, match=r"empty\.csv: the file is empty"):
        read_mnist_csv(path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_idx(tmp_path, digits, gz):
    data = idx_bytes(digits[0].reshape(-1, 28, 28))[:-100]
    path = tmp_path / ("cut-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError, match=r"cut-images-idx3-ubyte.*truncated"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path, digits):
    data = gzip.compress(idx_bytes(digits[0].reshape(-1, 28, 28)))
    path = tmp_path / "stream-images-idx3-ubyte.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"stream-images-idx3-ubyte\.gz: corrupt"):
        read_idx(path)


def test_idx_with_a_wrong_magic_number(tmp_path, digits):
    data = bytearray(idx_bytes(digits[1]))
    data[2] = 0x0D  # float32 instead of unsigned bytes
    path = tmp_path / "magic-labels-idx1-ubyte"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"magic-labels-idx1-ubyte.*wrong magic"):
        read_idx(path)


def test_idx_labels_not_matching_images(tmp_path, digits):
    write_idx_pair(tmp_path, "train", digits[0], digits[1][:4])
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: expected 6"):
        load_mnist(tmp_path)


def test_missing_path_and_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"found neither mnist_train\.csv"):
        load_mnist(tmp_path)


def test_invalid_subset():
    with pytest.raises(ValueError, match="subset='valid'"):
        load_mnist(subset="valid")
