import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import MLPAutoencoder
from skae.metrics import compare, reconstruction_error


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.rand(120, 3) @ rng.rand(3, 8) + 0.01 * rng.rand(120, 8)
    return X[:80], X[80:]


def test_reconstruction_error_is_the_mean_squared_error(data):
    X_train, X_test = data
    pca = PCA(n_components=2).fit(X_train)
    expected = np.mean((X_test - pca.inverse_transform(pca.transform(X_test))) ** 2)
    assert reconstruction_error(pca, X_test) == pytest.approx(expected)
    ae = MLPAutoencoder(2, hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    ae.fit(X_train)
    assert reconstruction_error(ae, X_test) == pytest.approx(-ae.score(X_test))


def test_reconstruction_error_of_a_pipeline(data):
    X_train, X_test = data
    pipe = make_pipeline(StandardScaler(), PCA(n_components=8)).fit(X_train)
    assert reconstruction_error(pipe, X_test) < 1e-20


# promise: vs_pca.rst / Comparing your own models
def test_compare_table(data):
    X_train, X_test = data
    models = {
        "pca": PCA(n_components=2),
        "ae": MLPAutoencoder(2, hidden_layer_sizes=(8,), max_iter=2, random_state=0),
    }
    table = compare(models, X_train, X_test)
    assert list(table.index) == ["pca", "ae"]
    assert list(table["model"]) == ["PCA", "MLPAutoencoder"]
    assert list(table["n_components"]) == [2, 2]
    for name, model in models.items():
        # Fitted in place, and the error is the model's own.
        assert_allclose(
            table.loc[name, "test_mse"], reconstruction_error(model, X_test)
        )
    assert_allclose(table["squared_error_per_image"], table["test_mse"] * 8)
    for column in ["fit_seconds", "transform_seconds", "inverse_transform_seconds"]:
        assert table[column].dtype == np.float64
        assert np.isfinite(table[column]).all()


def test_compare_names_a_list_by_class_and_components(data):
    table = compare([PCA(1), PCA(3)], *data)
    assert list(table.index) == ["PCA(n_components=1)", "PCA(n_components=3)"]
    with pytest.raises(ValueError, match="pass a dict"):
        compare([PCA(1), PCA(1)], *data)
