"""skae: scikit-learn compatible autoencoders on PyTorch."""

from skae._autoencoder import MLPAutoencoder

__version__ = "0.1.0"

__all__ = ["MLPAutoencoder", "__version__"]
