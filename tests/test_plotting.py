import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.decomposition import PCA

from skae import MLPAutoencoder
from skae.metrics import compare
from skae.plotting import (
    image_grid,
    plot_error_vs_components,
    plot_images,
    plot_latent,
    plot_loss_curve,
    plot_reconstructions,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def numbered_images(n, shape=(4, 3)):
    """Image k is filled with the value k, so a tile tells which image it is."""
    return np.repeat(np.arange(n, dtype=float), shape[0] * shape[1]).reshape(n, -1)


def test_image_grid_is_row_major_without_repeats():
    X = numbered_images(15)
    grid = image_grid(X, n_rows=3, n_cols=5, image_shape=(4, 3))
    assert grid.shape == (12, 15)
    tiles = grid.reshape(3, 4, 5, 3)[:, 0, :, 0]
    assert_array_equal(tiles, np.arange(15).reshape(3, 5))


def test_image_grid_keeps_pixel_layout():
    X = np.arange(2 * 6, dtype=float).reshape(2, 6)
    grid = image_grid(X, 1, 2, image_shape=(2, 3))
    assert_array_equal(grid, [[0, 1, 2, 6, 7, 8], [3, 4, 5, 9, 10, 11]])


def test_image_grid_leaves_missing_tiles_blank():
    grid = image_grid(numbered_images(4), 2, 3, image_shape=(4, 3))
    assert np.isnan(grid[4:, 3:]).all()
    assert not np.isnan(grid[:4]).any()


def test_plot_images_shows_images_in_order_in_a_figure_shaped_like_the_grid():
    ax = plot_images(numbered_images(20), n_rows=3, n_cols=5, image_shape=(4, 3))
    shown = ax.images[0].get_array()
    assert_array_equal(
        shown.reshape(3, 4, 5, 3)[:, 0, :, 0], np.arange(15).reshape(3, 5)
    )
    width, height = ax.figure.get_size_inches()
    assert width / height == pytest.approx(5 / 3)


def test_image_grid_refuses_a_wrong_image_shape():
    with pytest.raises(ValueError, match="784 columns"):
        image_grid(np.zeros((3, 10)), 1, 3)


@pytest.fixture
def fitted_models():
    rng = np.random.RandomState(0)
    X = rng.rand(300, 16)
    pca = PCA(n_components=2).fit(X)
    ae = MLPAutoencoder(2, hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X)
    return X, pca, ae


def test_plot_reconstructions_rows(fitted_models):
    X, pca, ae = fitted_models
    fig = plot_reconstructions(X, {"PCA": pca, "AE": ae}, n=6, image_shape=(4, 4))
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == ["original", "PCA", "AE"]
    assert_array_equal(
        fig.axes[0].images[0].get_array(), image_grid(X[:6], 1, 6, (4, 4))
    )
    expected = image_grid(pca.inverse_transform(pca.transform(X[:6])), 1, 6, (4, 4))
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(), expected)


def ae_data(fitted_models):
    return fitted_models[0]


def test_plot_loss_curve(fitted_models):
    _, _, ae = fitted_models
    ax = plot_loss_curve(ae)
    line, validation = ax.get_lines()
    # One point per epoch (on 300 rows the defaults cross-validate how many).
    assert_array_equal(line.get_xdata(), np.arange(1, ae.n_iter_ + 1))
    assert_array_equal(line.get_ydata(), ae.loss_curve_)
    assert_array_equal(validation.get_ydata(), ae.validation_loss_curve_)
    ae_without = clone(ae).set_params(early_stopping=False).fit(ae_data(fitted_models))
    assert len(plot_loss_curve(ae_without).get_lines()) == 1


def test_plot_latent_from_estimator_and_codes(fitted_models):
    X, pca, _ = fitted_models
    y = np.arange(300) % 3
    ax = plot_latent(pca, y, X=X)
    assert len(ax.collections) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    ax = plot_latent(pca.transform(X))
    assert len(ax.collections) == 1
    with pytest.raises(ValueError, match="needs X"):
        plot_latent(pca, y)


def test_plot_error_vs_components(fitted_models):
    X, _, _ = fitted_models
    models = {
        f"{kind}{n}": model
        for n in (1, 4)
        for kind, model in [
            ("pca", PCA(n)),
            ("ae", MLPAutoencoder(n, hidden_layer_sizes=(8,), max_iter=2)),
        ]
    }
    results = compare(models, X[:200], X[200:])
    ax = plot_error_vs_components(results)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["PCA", "MLPAutoencoder"]
    assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 4])


def test_library_never_calls_show(monkeypatch, fitted_models):
    monkeypatch.setattr(plt, "show", pytest.fail)
    X, pca, ae = fitted_models
    plot_images(X, 2, 2, image_shape=(4, 4))
    plot_reconstructions(X, {"PCA": pca}, n=3, image_shape=(4, 4))
    plot_loss_curve(ae)
    plot_latent(ae, X=X)
