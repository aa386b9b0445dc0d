"""Matplotlib helpers: image grids, reconstructions, loss curves, codes, error curves.

matplotlib is imported only when a function is called, and nothing here calls
``plt.show()``: every function returns its matplotlib object, and works headless.
"""

import numpy as np

__all__ = [
    "image_grid",
    "plot_error_vs_components",
    "plot_explained_variance",
    "plot_images",
    "plot_latent",
    "plot_loss_curve",
    "plot_reconstructions",
]


def image_grid(X, n_rows, n_cols, image_shape=(28, 28)):
    """Tile the first ``n_rows * n_cols`` rows of X into one image, row-major.

    Tile (i, j) holds image ``i * n_cols + j``. Tiles beyond the rows of X are
    NaN (drawn blank).

    Parameters
    ----------
    X : array-like of shape (n_samples, height * width)
        One flattened image per row.
    n_rows, n_cols : int
        Shape of the grid, in images.
    image_shape : tuple of int, default=(28, 28)
        (height, width) of one image.

    Returns
    -------
    grid : ndarray of shape (n_rows * height, n_cols * width)
        The tiles, ready for ``imshow``.

    See Also
    --------
    plot_images : Draws this grid.

    Examples
    --------
    >>> import numpy as np
    >>> from skae.plotting import image_grid
    >>> X = np.arange(6)[:, None] * np.ones((6, 4))  # six 2x2 images, image i all i
    >>> image_grid(X, 2, 3, image_shape=(2, 2))[::2, ::2]  # one pixel per tile
    array([[0., 1., 2.],
           [3., 4., 5.]])
    """
    X = np.asarray(X, dtype=np.float64)
    height, width = image_shape
    if X.ndim != 2 or X.shape[1] != height * width:
        raise ValueError(
            f"X must have one flattened {height}x{width} image per row "
            f"({height * width} columns), got shape {X.shape}."
        )
    if n_rows < 1 or n_cols < 1:
        raise ValueError(f"n_rows={n_rows} and n_cols={n_cols} must be >= 1.")
    tiles = np.full((n_rows * n_cols, height, width), np.nan)
    n_images = min(len(X), n_rows * n_cols)
    tiles[:n_images] = X[:n_images].reshape(n_images, height, width)
    return (
        tiles.reshape(n_rows, n_cols, height, width)
        .transpose(0, 2, 1, 3)
        .reshape(n_rows * height, n_cols * width)
    )


def plot_images(
    X, n_rows=3, n_cols=5, image_shape=(28, 28), *, ax=None, title=None, cmap="gray"
):
    """Show the first ``n_rows * n_cols`` images of X in a grid, row by row.

    The chapter's ``display(data, m, n)``, with its two slips fixed: image
    ``i * n_cols + j`` goes in row i, column j (the chapter's ``i * m + j``
    repeats images), and the figure is as wide as the grid has columns.

    Parameters
    ----------
    X : array-like of shape (n_samples, height * width)
        One flattened image per row.
    n_rows, n_cols : int, default=3, 5
        Shape of the grid, in images.
    image_shape : tuple of int, default=(28, 28)
        (height, width) of one image.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure sized to the grid when None.
    title : str, default=None
        Title of the axes.
    cmap : str, default="gray"
        Colormap.

    Returns
    -------
    ax : matplotlib Axes

    See Also
    --------
    plot_reconstructions : Originals and each model's reconstructions.

    Examples
    --------
    >>> from skae.datasets import load_mnist_sample
    >>> from skae.plotting import plot_images
    >>> X, _ = load_mnist_sample()
    >>> ax = plot_images(X, n_rows=2, n_cols=4)
    >>> ax.images[0].get_array().shape
    (56, 112)
    """
    grid = image_grid(X, n_rows, n_cols, image_shape)
    if ax is None:
        plt = _pyplot()
        _, ax = plt.subplots(figsize=(1.2 * n_cols, 1.2 * n_rows), layout="constrained")
    ax.imshow(grid, cmap=cmap, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_reconstructions(X, models, n=10, image_shape=(28, 28), *, cmap="gray"):
    """Show n originals, then each model's reconstructions of them, a row each.

    Parameters
    ----------
    X : array-like of shape (n_samples, height * width)
        Images to reconstruct; the first n are shown.
    models : dict of str to fitted transformer
        Each with `transform` and `inverse_transform`, e.g.
        ``{"PCA": pca, "Autoencoder": ae}``.
    n : int, default=10
        Number of images per row.
    image_shape : tuple of int, default=(28, 28)
        (height, width) of one image.
    cmap : str, default="gray"
        Colormap.

    Returns
    -------
    fig : matplotlib Figure
        One row of axes for the originals and one per model, each titled.

    See Also
    --------
    plot_images : One grid of images.
    skae.metrics.compare : The numbers behind the pictures.

    Examples
    --------
    >>> from sklearn.decomposition import PCA
    >>> from skae.datasets import load_mnist_sample
    >>> from skae.plotting import plot_reconstructions
    >>> X, _ = load_mnist_sample()
    >>> pca = PCA(30).fit(X[:1000])
    >>> fig = plot_reconstructions(X[1000:], {"PCA": pca}, n=8)
    >>> len(fig.axes)  # the originals, then PCA
    2
    """
    X = np.asarray(X)[:n]
    rows = {"original": X}
    for name, model in models.items():
        rows[name] = model.inverse_transform(model.transform(X))
    plt = _pyplot()
    fig, axes = plt.subplots(
        len(rows),
        1,
        figsize=(1.2 * n, 1.45 * len(rows)),
        squeeze=False,
        layout="constrained",
    )
    # One colour scale for every row, the originals', so rows compare fairly.
    low, high = float(np.min(X)), float(np.max(X))
    for ax, (name, images) in zip(axes[:, 0], rows.items(), strict=True):
        ax.imshow(
            image_grid(images, 1, n, image_shape),
            cmap=cmap,
            vmin=low,
            vmax=high,
            interpolation="nearest",
        )
        ax.set_axis_off()
        ax.set_title(name, loc="left", fontsize="medium")
    return fig


def plot_loss_curve(estimator, *, ax=None, label=None):
    """Plot the training loss per epoch, and the validation loss when recorded.

    Parameters
    ----------
    estimator : fitted MLPAutoencoder
        Reads ``loss_curve_`` and, when present, ``validation_loss_curve_``.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None. Pass the same axes to overlay
        several models.
    label : str, default=None
        Legend label of the training curve.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.

    See Also
    --------
    skae.MLPAutoencoder : Its ``loss_curve_`` and ``validation_loss_curve_``.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import MLPAutoencoder
    >>> from skae.plotting import plot_loss_curve
    >>> X = np.random.RandomState(0).rand(100, 8)
    >>> ae = MLPAutoencoder(2, max_iter=5, random_state=0).fit(X)
    >>> ax = plot_loss_curve(ae, label="training")
    >>> [line.get_label() for line in ax.lines]
    ['training', 'training (validation)']
    """
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(6, 4), layout="constrained")
    epochs = np.arange(1, len(estimator.loss_curve_) + 1)
    (line,) = ax.plot(epochs, estimator.loss_curve_, label=label or "training")
    validation = getattr(estimator, "validation_loss_curve_", None)
    if validation is not None:
        ax.plot(
            epochs,
            validation,
            linestyle="--",
            color=line.get_color(),
            label=f"{label} (validation)" if label else "validation",
        )
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(f"mean loss ({estimator.loss})")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return ax


def plot_latent(estimator_or_codes, y=None, *, X=None, ax=None, max_points=5000):
    """Scatter a 2-D code, coloured by label.

    Parameters
    ----------
    estimator_or_codes : fitted transformer or array-like of shape (n_samples, k)
        Codes, or a fitted transformer whose ``transform(X)`` gives them. The
        first two columns are plotted.
    y : array-like of shape (n_samples,), default=None
        Labels for the colours and the legend.
    X : array-like of shape (n_samples, n_features), default=None
        Data to encode; required when an estimator is given.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    max_points : int, default=5000
        Plot at most this many points (the first ones), to keep files small.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.

    See Also
    --------
    skae.MLPAutoencoder.transform : The codes plotted.

    Examples
    --------
    >>> import numpy as np
    >>> from skae.plotting import plot_latent
    >>> codes = np.random.RandomState(0).randn(50, 2)
    >>> ax = plot_latent(codes, y=np.arange(50) % 3)
    >>> ax.get_xlabel()
    'code 0'
    """
    if hasattr(estimator_or_codes, "transform"):
        if X is None:
            raise ValueError("plot_latent needs X to encode when given an estimator.")
        codes = np.asarray(estimator_or_codes.transform(X))
    else:
        codes = np.asarray(estimator_or_codes)
    if codes.ndim != 2 or codes.shape[1] < 2:
        raise ValueError(
            f"codes must have at least 2 columns, got shape {codes.shape}."
        )
    codes = codes[:max_points]
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(6, 5), layout="constrained")
    if y is None:
        ax.scatter(codes[:, 0], codes[:, 1], s=4, alpha=0.6)
    else:
        y = np.asarray(y)[:max_points]
        colours = _pyplot().get_cmap("tab10")
        for index, label in enumerate(np.unique(y)):
            mask = y == label
            ax.scatter(
                codes[mask, 0],
                codes[mask, 1],
                s=4,
                alpha=0.6,
                color=colours(index % 10),
                label=str(label),
            )
        ax.legend(markerscale=3, fontsize="small", title="label")
    ax.set_xlabel("code 0")
    ax.set_ylabel("code 1")
    return ax


def plot_error_vs_components(results, *, ax=None, metric="test_mse"):
    """Plot test reconstruction error against n_components, a line per model type.

    Parameters
    ----------
    results : pandas.DataFrame
        As returned by :func:`skae.metrics.compare`: the columns ``model``,
        ``n_components`` and `metric`.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    metric : str, default="test_mse"
        Column to plot.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.

    See Also
    --------
    skae.metrics.compare : Makes `results`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from skae.metrics import compare
    >>> from skae.plotting import plot_error_vs_components
    >>> X = np.random.RandomState(0).rand(80, 6)
    >>> results = compare([PCA(1), PCA(2), PCA(4)], X[:60], X[60:])
    >>> ax = plot_error_vs_components(results)
    >>> [line.get_label() for line in ax.lines]
    ['PCA']
    """
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(6, 4), layout="constrained")
    for model, group in results.groupby("model", sort=False):
        group = group.sort_values("n_components")
        ax.plot(group["n_components"], group[metric], marker="o", label=model)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n_components")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return ax


def plot_explained_variance(pca, searches=None, *, ax=None):
    """Plot explained variance against n_components: PCA's curve, the searches' points.

    PCA's curve is free from its spectrum, ``cumsum(explained_variance_ratio_)``
    (on the rows it was fitted on). Each width search of an MLPAutoencoder with
    a float ``n_components`` adds the widths it fitted, the width chosen
    circled, and its fraction as a dotted line.

    Parameters
    ----------
    pca : fitted PCA
        Fitted with every component (``PCA()``) for the whole curve.
    searches : dict, default=None
        Maps a fraction to a fitted MLPAutoencoder with that float
        ``n_components``, or to its ``n_components_search_``.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on.

    See Also
    --------
    skae.metrics.explained_variance : The fraction the points show.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from skae.plotting import plot_explained_variance
    >>> X = np.random.RandomState(0).rand(80, 6)
    >>> search = [{"n_components": 2, "explained_variance": 0.5, "n_iter": 3,
    ...            "seconds": 1.0}]
    >>> ax = plot_explained_variance(PCA().fit(X), {0.5: search})
    >>> [line.get_label() for line in ax.lines][:2]
    ['PCA', 'autoencoder, 0.5']
    """
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(6, 4), layout="constrained")
    curve = np.cumsum(pca.explained_variance_ratio_)
    widths = np.arange(1, curve.size + 1)
    ax.plot(widths, curve, label="PCA")
    for fraction, search in (searches or {}).items():
        if not isinstance(search, list):
            search = search.n_components_search_
        tried = sorted((e["n_components"], e["explained_variance"]) for e in search)
        (points,) = ax.plot(
            [width for width, _ in tried],
            [value for _, value in tried],
            linestyle="none",
            marker="o",
            label=f"autoencoder, {fraction}",
        )
        reached = [width for width, value in tried if value >= fraction]
        if reached:
            ax.plot(
                [min(reached)],
                [dict(tried)[min(reached)]],
                linestyle="none",
                marker="o",
                markersize=12,
                markerfacecolor="none",
                color=points.get_color(),
            )
        ax.axhline(fraction, linestyle=":", color=points.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("n_components")
    ax.set_ylabel("explained variance")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return ax


def _pyplot():
    """Import pyplot on first use, with a clear error when matplotlib is missing."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "skae.plotting needs matplotlib: pip install matplotlib (or skae[plot])."
        ) from error
    return plt
