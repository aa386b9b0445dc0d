"""
Autoencoder or PCA?
===================

Both give an n-number code of each image and a way back. ``skae.metrics.compare``
fits each on the training images and measures the reconstruction error on held-out
test images, at several code widths.

Set ``SKAE_EXAMPLES_FAST=1`` to run with tiny settings.
"""

import os

from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skae import MLPAutoencoder
from skae.datasets import load_mnist_sample
from skae.metrics import compare
from skae.plotting import plot_error_vs_components, plot_latent, plot_reconstructions

FAST = os.environ.get("SKAE_EXAMPLES_FAST") == "1"

X, y = load_mnist_sample()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=1000, random_state=0, stratify=y
)
if FAST:
    X_train = X_train[:300]

models = {}
for n in (2, 10, 30):
    models[f"PCA-{n}"] = PCA(n_components=n)
    models[f"AE-{n}"] = MLPAutoencoder(
        n_components=n, max_iter=2 if FAST else 20, random_state=0
    )
results = compare(models, X_train, X_test)
print(results[["model", "n_components", "test_mse", "fit_seconds"]])

# %%
# Test error against the width of the code:
plot_error_vs_components(results)

# %%
# What the errors look like:
plot_reconstructions(X_test, {name: models[name] for name in ("PCA-10", "AE-10")})

# %%
# With two numbers per image, the codes can be plotted; the autoencoder's is
# nonlinear and tends to separate the digits more:
ax = plot_latent(models["AE-2"], y_test, X=X_test)
ax.set_title("autoencoder, 2-D code")
ax = plot_latent(models["PCA-2"], y_test, X=X_test)
ax.set_title("PCA, 2-D code")
