"""
Quick start
===========

An autoencoder next to PCA on real MNIST digits: fit both on 4,000 images and
compare their reconstruction error on the other 1,000.
"""

from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skae import MLPAutoencoder
from skae.datasets import load_mnist_sample

X, y = load_mnist_sample()  # 5,000 digits shipped with skae, pixels in [0, 1]
X_train, X_test = train_test_split(X, test_size=1000, random_state=0)
for model in [PCA(n_components=30), MLPAutoencoder(n_components=30, random_state=0)]:
    model.fit(X_train)
    X_reconstructed = model.inverse_transform(model.transform(X_test))
    mse = ((X_test - X_reconstructed) ** 2).mean()
    print(f"{type(model).__name__:>14}: test MSE {mse:.4f}")
