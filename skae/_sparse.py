"""Sparse training data: rows densified one batch at a time, and PCA without densifying.

Never imports scikit-learn. `SparseRows` wraps a scipy.sparse CSR matrix and
behaves as the training loop expects of a tensor of rows: ``shape``,
``device`` and ``X[rows]``, which returns those rows as a dense float32 tensor
on the device. Nothing ever holds more than one batch densely.
"""

import numpy as np
import scipy.sparse
import torch

import skae._distributed as _distributed
from skae._torch_utils import data_device, release_memory

# The most features whose covariance a distributed fit adds up over the ranks
# for sparse rows' PCA start (a float64 matrix of this size squared: 128 MiB).
SHARED_COVARIANCE_FEATURES = 4096

# Dense entries per batch when sparse or very wide rows are densified for
# scoring: 2**22 float32 entries (16 MB), at most INFERENCE_BATCH_SIZE rows.
DENSE_BATCH_ENTRIES = 2**22
# Randomized SVD of the PCA start: extra columns and power iterations (Halko,
# Martinsson and Tropp, 2011); scikit-learn's randomized_svd uses the same.
OVERSAMPLES = 10
POWER_ITERATIONS = 5


def is_sparse(X):
    """Whether X is a scipy.sparse matrix or array."""
    return scipy.sparse.issparse(X)


def batch_rows(n_features, largest=4096):
    """Rows per batch so that a dense batch holds about DENSE_BATCH_ENTRIES."""
    return max(1, min(largest, DENSE_BATCH_ENTRIES // max(n_features, 1)))


def dense_batches(X, largest=4096):
    """Yield (start, stop, rows of X as a dense ndarray) over the rows of X.

    A dense X is yielded whole, without a copy; a sparse one a batch at a time.
    """
    if not is_sparse(X):
        yield 0, X.shape[0], X
        return
    step = batch_rows(X.shape[1], largest)
    for start in range(0, X.shape[0], step):
        stop = min(start + step, X.shape[0])
        yield start, stop, X[start:stop].toarray()


def as_csr32(X):
    """Return X as a float32 CSR matrix, without a copy when it already is one."""
    X = scipy.sparse.csr_matrix(X)
    if X.dtype != np.float32:
        X = X.astype(np.float32)
    return X


def update_digest(digest, X):
    """Feed the values of X (dense or sparse) into a hashlib digest.

    A few MB at a time: the bytes fed are those of X as float32 (dense), or of
    its sorted CSR's shape, indptr and indices as int64 and values as float32,
    without converting X whole.
    """
    if not is_sparse(X):
        _feed(digest, X, np.float32)
        return
    X = as_csr32(X)
    X.sort_indices()
    digest.update(np.asarray(X.shape, dtype=np.int64).tobytes())
    for part, dtype in ((X.indptr, np.int64), (X.indices, np.int64), (X.data, None)):
        _feed(digest, part, dtype)


def _feed(digest, array, dtype, chunk_bytes=2**23):
    """Feed `array` (1-D or 2-D, rows in order) to `digest` as C-ordered `dtype`."""
    if array.ndim == 1:
        step = max(1, chunk_bytes // array.itemsize)
    else:
        step = max(1, chunk_bytes // max(1, array.shape[1] * array.itemsize))
    for start in range(0, array.shape[0], step):
        part = np.ascontiguousarray(array[start : start + step], dtype=dtype)
        digest.update(memoryview(part).cast("B"))


class SparseRows:
    """Rows of a CSR matrix that training reads as dense float32 tensors.

    ``X[rows]`` (a slice, or indices as a tensor or an array) densifies only
    those rows; `take` selects rows as another `SparseRows`, still sparse.
    """

    dtype = torch.float32

    def __init__(self, X, device="cpu"):
        self.matrix = as_csr32(X)
        self.device = torch.device(device)

    @property
    def shape(self):
        """(n_samples, n_features), as a tensor's shape."""
        return torch.Size(self.matrix.shape)

    def __getitem__(self, rows):
        # The previous batches' dense blocks are freed by now: hand the heap's
        # free memory back before allocating the next, or glibc's heaps
        # fragment and the process grows to several times what it uses.
        release_memory()
        if isinstance(rows, torch.Tensor):
            rows = rows.cpu().numpy()
        return torch.from_numpy(self.matrix[rows].toarray()).to(self.device)

    def take(self, rows):
        """Return the rows `rows` as a new SparseRows (a sparse copy)."""
        if isinstance(rows, torch.Tensor):
            rows = rows.cpu().numpy()
        return SparseRows(self.matrix[rows], self.device)

    def to(self, device):
        """Return these rows, to be densified on `device`."""
        return SparseRows(self.matrix, device)

    def column_means(self, sample_weight=None):
        """Return the (weighted) mean of each column as a float32 tensor."""
        return torch.from_numpy(self._mean(sample_weight).astype(np.float32)).to(
            self.device
        )

    def principal_axes(self, n_components, sample_weight=None):
        """Return PCA's top axes and the mean, as `skae._modules.pca_basis` does.

        A randomized SVD of the centred rows in which the centring is implicit:
        each product with the centred matrix is a product with the sparse one
        minus a rank-one term, so X is never densified and the cost is a few
        sparse products with ``n_components + OVERSAMPLES`` columns.
        """
        if _distributed.current() is not None:
            return self._shared_principal_axes(n_components, sample_weight)
        X = self.matrix
        n_samples, n_features = X.shape
        n_pca = min(n_components, n_samples, n_features)
        mean = self._mean(sample_weight)
        if sample_weight is None:
            root = np.full(n_samples, 1.0 / np.sqrt(n_samples))
        else:
            weights = sample_weight.detach().cpu().numpy().astype(np.float64)
            root = np.sqrt(weights / weights.sum())
        root32, mean32 = root.astype(np.float32), mean.astype(np.float32)

        def times(Q):
            # (diag(root) (X - 1 mean^T)) @ Q, in place: one n_samples-row array.
            product = np.asarray(X @ Q)
            product -= mean32 @ Q
            product *= root32[:, None]
            return product

        def times_transposed(P):
            # (diag(root) (X - 1 mean^T))^T @ P
            scaled = root32[:, None] * P
            return X.T @ scaled - np.outer(mean32, scaled.sum(axis=0))

        width = min(n_pca + OVERSAMPLES, n_samples, n_features)
        random = np.random.default_rng(0)
        Q = random.standard_normal((n_features, width)).astype(np.float32)
        Q = _orthonormal(times(Q))
        for _ in range(POWER_ITERATIONS):
            Q = _orthonormal(times(_orthonormal(times_transposed(Q))))
        B = times_transposed(Q).T.astype(np.float64)
        _, _, vectors = np.linalg.svd(B, full_matrices=False)
        components = vectors[:n_pca]
        largest = np.abs(components).argmax(axis=1)
        components *= np.sign(components[np.arange(n_pca), largest])[:, None]
        return (
            torch.from_numpy(components.astype(np.float32)).to(self.device),
            torch.from_numpy(mean32).to(self.device),
        )

    def _row_weights(self, sample_weight):
        """Return each row's weight as float64 NumPy (ones when None)."""
        if sample_weight is None:
            return np.ones(self.matrix.shape[0])
        return sample_weight.detach().cpu().numpy().astype(np.float64)

    def _shared_moments(self, weights):
        """Return (rows, total weight, weighted column means) over every rank."""
        summed = _distributed.all_sum(
            torch.from_numpy(
                np.concatenate(
                    [[self.matrix.shape[0], weights.sum()], self.matrix.T @ weights]
                )
            )
        ).numpy()
        return int(summed[0]), summed[1], summed[2:] / summed[1]

    def _shared_principal_axes(self, n_components, sample_weight):
        """`principal_axes` of every rank's rows, from their summed covariances."""
        X = self.matrix
        n_features = X.shape[1]
        if n_features > SHARED_COVARIANCE_FEATURES:
            raise ValueError(
                f"A distributed fit of sparse rows with {n_features} features "
                "cannot start from PCA: it adds up covariances of at most "
                f"{SHARED_COVARIANCE_FEATURES} features. Use init='random', or "
                "reduce the features first (e.g. TruncatedSVD)."
            )
        weights = self._row_weights(sample_weight)
        total_rows, total_weight, mean = self._shared_moments(weights)
        second = np.asarray((X.T @ scipy.sparse.diags(weights) @ X).todense())
        second = _distributed.all_sum(torch.from_numpy(second)).numpy()
        covariance = second / total_weight - np.outer(mean, mean)
        _, vectors = np.linalg.eigh(covariance)
        n_pca = min(n_components, total_rows, n_features)
        components = vectors[:, ::-1].T[:n_pca].copy()
        largest = np.abs(components).argmax(axis=1)
        components *= np.sign(components[np.arange(n_pca), largest])[:, None]
        return (
            torch.from_numpy(components.astype(np.float32)).to(self.device),
            torch.from_numpy(mean.astype(np.float32)).to(self.device),
        )

    def _mean(self, sample_weight):
        """Return the (weighted) column means in float64 (over every rank's rows)."""
        if _distributed.current() is not None:
            return self._shared_moments(self._row_weights(sample_weight))[2]
        if sample_weight is None:
            return np.asarray(self.matrix.mean(axis=0, dtype=np.float64)).ravel()
        weights = self._row_weights(sample_weight)
        return np.asarray(self.matrix.T @ weights).ravel() / weights.sum()


def _orthonormal(Y):
    """Return an orthonormal basis of the columns of Y, in Y's dtype.

    Through torch, which factors float32 in float32 (as scikit-learn's
    randomized_svd does); NumPy's qr would work on a float64 copy, which
    doubled the memory of the PCA start of a tall matrix.
    """
    Q, _ = torch.linalg.qr(torch.from_numpy(np.ascontiguousarray(Y)))
    return Q.numpy()


def rows_for_training(X, device):
    """Return validated X as the training loop reads it: a tensor or SparseRows."""
    if is_sparse(X):
        return SparseRows(X, device)
    X = np.asarray(X, dtype=np.float32)
    if not X.flags.writeable:
        # torch warns about read-only arrays (e.g. memory maps); training never
        # writes to X, but a private copy keeps the warning from reaching users.
        X = X.copy()
    X = torch.from_numpy(X)
    where = data_device(X.nbytes, device)
    if where.type == "cpu" and torch.device(device).type == "cuda":
        # Too big for the GPU: batches go from pinned host memory, asynchronously.
        return X.pin_memory()
    return X.to(where)


def take_rows(X, rows):
    """Return the rows `rows` of a tensor or of SparseRows, keeping its kind."""
    if isinstance(X, SparseRows):
        return X.take(rows)
    return X[rows]
