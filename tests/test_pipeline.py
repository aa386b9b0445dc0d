"""MLPAutoencoder next to PCA: the same pipeline code runs with either."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from skae import MLPAutoencoder


@pytest.fixture
def X_wide_range():
    """Correlated features on scales far from [0, 1]."""
    rng = np.random.RandomState(0)
    X = rng.rand(300, 4) @ rng.rand(4, 12)
    return X * np.linspace(1, 500, 12) - 100


def reducers():
    return [
        PCA(n_components=4),
        MLPAutoencoder(
            n_components=4,
            hidden_layer_sizes=(32,),
            max_iter=40,
            batch_size=32,
            learning_rate_init=0.01,
            random_state=0,
        ),
    ]


# promise: pipelines.rst / How do I use it in a pipeline or a grid search?
@pytest.mark.parametrize("reducer", reducers(), ids=["PCA", "MLPAutoencoder"])
def test_pipeline_inverse_transform_returns_the_original_scale(X_wide_range, reducer):
    pipe = Pipeline([("scale", MinMaxScaler()), ("ae", reducer)]).fit(X_wide_range)
    Z = pipe.transform(X_wide_range)
    assert Z.shape == (300, 4)
    X_back = pipe.inverse_transform(Z)
    assert X_back.shape == X_wide_range.shape
    # Back in the original units: errors are small relative to each column's range.
    column_range = np.ptp(X_wide_range, axis=0)
    relative_error = np.abs(X_back - X_wide_range) / column_range
    assert np.median(relative_error) < 0.01


# promise: pipelines.rst / How do I use it in a pipeline or a grid search?
@pytest.mark.parametrize("reducer", reducers(), ids=["PCA", "MLPAutoencoder"])
def test_grid_search_ranks_by_score(X_wide_range, reducer):
    # Noise keeps the data of full rank: on exactly rank-4 data PCA's
    # log-likelihood is -inf or finite depending on the BLAS kernel's rounding.
    noise = np.random.RandomState(1).normal(size=X_wide_range.shape)
    X = X_wide_range + noise * np.linspace(1, 500, 12) * 0.01
    pipe = Pipeline([("scale", MinMaxScaler()), ("ae", reducer)])
    search = GridSearchCV(pipe, {"ae__n_components": [1, 4]}, cv=3)
    search.fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    # Four components model four latent factors better than one. (PCA's score
    # is a log-likelihood; the autoencoder's is the negative reconstruction error.)
    assert search.best_params_ == {"ae__n_components": 4}
    assert scores[1] > scores[0]
    if isinstance(reducer, MLPAutoencoder):
        assert np.all(scores < 0)


def test_clone_gives_an_unfitted_copy_with_the_same_parameters(X_wide_range):
    ae = MLPAutoencoder(n_components=3, hidden_layer_sizes=(8,), max_iter=2)
    ae.fit(MinMaxScaler().fit_transform(X_wide_range))
    copy = clone(ae)
    assert copy.get_params() == ae.get_params()
    assert not hasattr(copy, "encoder_")


def test_refitting_the_pipeline_is_reproducible(X_wide_range):
    pipe = Pipeline([("scale", MinMaxScaler()), ("ae", reducers()[1])])
    first = pipe.fit_transform(X_wide_range)
    second = clone(pipe).fit_transform(X_wide_range)
    assert_array_equal(first, second)
    # fit_transform is fit, then transform: the same computation, the same bits.
    assert_array_equal(pipe.transform(X_wide_range), first)
