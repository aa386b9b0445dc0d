"""Sparse input: CSR, CSC and sparse arrays, densified a batch at a time."""

import functools

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline

import skae
from skae._sparse import SparseRows

import _helpers

pytestmark = pytest.mark.filterwarnings("ignore", category=ConvergenceWarning)


def sparse_data(n_samples=150, n_features=40, seed=0):
    return scipy.sparse.random(
        n_samples, n_features, density=0.1, format="csr", random_state=seed
    )


# Three components, early stopping "auto" (the default path) unless a test sets it.
tiny = functools.partial(_helpers.tiny, n_components=3, early_stopping="auto")


def decaying(n_samples, n_features):
    """Sparse data whose variances decay by column: a spectrum with gaps."""
    X = sparse_data(n_samples, n_features)
    return X @ scipy.sparse.diags(0.6 ** np.arange(n_features))


# promise: sparse.rst / The PCA start without densifying
def test_sparse_pca_start_matches_dense_pca():
    X = decaying(300, 30)
    components, mean = SparseRows(X).principal_axes(3)
    pca = PCA(3).fit(X.toarray())
    np.testing.assert_allclose(mean.numpy(), pca.mean_, atol=1e-6)
    overlap = np.linalg.svd(components.numpy() @ pca.components_.T)[1]
    assert overlap.min() > 0.999


def test_sparse_pca_start_with_weights_matches_repeated_rows():
    X = decaying(60, 12)
    weights = torch.tensor(np.r_[np.full(30, 2.0), np.ones(30)], dtype=torch.float32)
    repeated = scipy.sparse.vstack([X[:30], X])
    components, mean = SparseRows(X).principal_axes(2, weights)
    expected, expected_mean = SparseRows(repeated).principal_axes(2)
    np.testing.assert_allclose(mean.numpy(), expected_mean.numpy(), atol=1e-5)
    overlap = np.linalg.svd(components.numpy() @ expected.numpy().T)[1]
    assert overlap.min() > 0.999


# promise: sparse.rst / What about sparse data?
@pytest.mark.parametrize(
    "convert",
    [
        scipy.sparse.csr_matrix,
        scipy.sparse.csc_matrix,
        scipy.sparse.csr_array,
        scipy.sparse.coo_matrix,
    ],
)
def test_sparse_input_gives_the_dense_results(convert):
    # A random start: the same batches, densified, give the same training.
    X = sparse_data()
    dense = tiny(init="random").fit(X.toarray())
    sparse = tiny(init="random").fit(convert(X))
    np.testing.assert_allclose(
        sparse.transform(X), dense.transform(X.toarray()), atol=1e-5
    )
    codes = sparse.transform(convert(X))
    assert isinstance(codes, np.ndarray) and codes.shape == (150, 3)
    assert np.isclose(sparse.score(convert(X)), dense.score(X.toarray()), rtol=1e-4)


def test_partial_fit_on_sparse_chunks_trains_as_on_dense_ones():
    # A random start: the same chunks, densified, give the same training.
    X = sparse_data()
    sparse, dense = tiny(init="random"), tiny(init="random")
    for start in range(0, 150, 50):
        sparse.partial_fit(X[start : start + 50])
        dense.partial_fit(X[start : start + 50].toarray())
    np.testing.assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(
        sparse.transform(X), dense.transform(X.toarray()), atol=1e-5
    )


def test_save_and_load_a_model_fitted_on_sparse_data(tmp_path):
    X = sparse_data()
    ae = tiny().fit(X)
    ae.save(tmp_path / "model.skae")
    np.testing.assert_array_equal(
        skae.load(tmp_path / "model.skae").transform(X), ae.transform(X)
    )


# promise: sparse.rst / What about sparse data?
def test_text_pipeline_next_to_truncated_svd():
    words = "cat dog fish bird tree leaf root stone river cloud".split()
    rng = np.random.RandomState(0)
    documents = [" ".join(rng.choice(words, 8)) for _ in range(80)]
    svd = make_pipeline(TfidfVectorizer(), TruncatedSVD(5, random_state=0))
    ae = make_pipeline(TfidfVectorizer(), tiny().set_params(n_components=5))
    assert ae.fit_transform(documents).shape == svd.fit_transform(documents).shape


def test_sparse_with_nan_is_refused():
    X = sparse_data().toarray()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="Sparse X contains NaN"):
        tiny().fit(scipy.sparse.csr_matrix(X))


# promise: sparse.rst / What is dense, and when
@pytest.mark.parametrize("n_features", [40, 2**22 // 100])
def test_training_densifies_a_batch_or_at_most_the_densify_limit(
    monkeypatch, n_features
):
    # The sparse page: a batch per step; the validation score and the start's
    # loss scale at most 4,096 rows or 2**22 entries at a time.
    X = scipy.sparse.random(200, n_features, density=0.002, random_state=0)
    X = X.tocsr()
    limit = min(4096, 2**22 // n_features)
    sizes = []
    original = SparseRows.__getitem__

    def spy(self, rows):
        dense = original(self, rows)
        sizes.append(dense.shape[0])
        return dense

    monkeypatch.setattr(SparseRows, "__getitem__", spy)
    ae = tiny(batch_size=16, early_stopping=True).fit(X)
    # 180 training rows: 12 steps an epoch, of 16 rows but the last of 4.
    assert sizes.count(16) == 11 * ae.n_iter_
    # The largest: the loss scale's sample of the 180 training rows, capped.
    assert max(sizes) == min(180, limit)


def test_grid_search_over_widths_on_sparse_input():
    from sklearn.model_selection import GridSearchCV

    X = decaying(200, 30)
    search = GridSearchCV(tiny(), {"n_components": [1, 3]}, cv=2).fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    # Three components keep more of the decaying spectrum than one.
    assert search.best_params_ == {"n_components": 3}
    assert search.best_estimator_.transform(X).shape == (200, 3)


def test_each_dense_batch_first_returns_the_heap_free_memory(monkeypatch):
    calls = []
    monkeypatch.setattr(skae._sparse, "release_memory", lambda: calls.append(1))
    X = sparse_data(300, 40)
    tiny(batch_size=50, early_stopping=False).set_params(max_iter=2).fit(X)
    assert len(calls) >= 2 * 6  # at least every training batch of both epochs


def test_randomized_svd_blocks_stay_float32_and_orthonormal():
    Y = np.random.RandomState(0).rand(500, 12).astype(np.float32)
    Q = skae._sparse._orthonormal(Y)
    assert Q.dtype == np.float32 and Q.shape == (500, 12)
    np.testing.assert_allclose(Q.T @ Q, np.eye(12), atol=1e-5)
