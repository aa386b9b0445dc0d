"""
The chapter's MNIST autoencoder, with skae
==========================================

The textbook chapter trains a 784-256-128-100 autoencoder with a sigmoid after
every layer, Adam at 0.01, batches of 256 and 0.5 * MSE for 10 epochs, printing
the loss every 2 epochs and showing test digits next to their reconstructions.
Here is the same model as a scikit-learn estimator, on the 5,000 MNIST digits
shipped with skae (the chapter uses all 60,000: pass ``load_mnist()`` if you have
them).

Set ``SKAE_EXAMPLES_FAST=1`` to run with tiny settings.
"""

import os

import matplotlib.pyplot as plt
from sklearn.model_selection import train_test_split

from skae import MLPAutoencoder
from skae.datasets import load_mnist_sample
from skae.plotting import plot_images, plot_loss_curve

FAST = os.environ.get("SKAE_EXAMPLES_FAST") == "1"

X, y = load_mnist_sample()
X_train, X_test = train_test_split(X, test_size=1000, random_state=0)
if FAST:
    X_train = X_train[:300]
print(f"training images: {len(X_train)}, test images: {len(X_test)}")

# %%
# The chapter's ``display``, shows images 0 ... 14 row by row:
plot_images(X_test, n_rows=3, n_cols=5, title="test images")

# %%
# The chapter's model is one set of parameters. A callback plays the part of the
# chapter's ``display_step``: every 2 epochs it prints the loss and keeps the
# reconstructions of the first 15 test images.
snapshots = {}


def every_two_epochs(estimator, record):
    if record.epoch % 2 == 0 or record.epoch + 1 == estimator.max_iter:
        print(f"epoch {record.epoch}, mean loss {record.train_loss:.4f}")
        snapshots[record.epoch] = estimator.reconstruct(X_test[:15])


chapter = MLPAutoencoder(
    n_components=100,
    hidden_layer_sizes=(256, 128),
    activation="logistic",
    latent_activation="logistic",
    output_activation="logistic",
    loss="squared_error",
    solver="adam",
    learning_rate_init=0.01,
    learning_rate="constant",
    early_stopping=False,
    batch_size=256,
    max_iter=2 if FAST else 10,
    random_state=0,
    callbacks=[every_two_epochs],
)
chapter.fit(X_train)

# %%
# Reconstructions as training goes on:
fig, axes = plt.subplots(1, len(snapshots), figsize=(4 * len(snapshots), 2.6))
for ax, (epoch, images) in zip(axes, snapshots.items(), strict=True):
    plot_images(images, 3, 5, ax=ax, title=f"after epoch {epoch}")

# %%
# The loss curve, and the final reconstructions of the test images:
plot_loss_curve(chapter)
plot_images(chapter.reconstruct(X_test), 3, 5, title="reconstructed")
print(f"test MSE: {-chapter.score(X_test):.4f}")
