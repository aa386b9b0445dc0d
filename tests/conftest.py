import numpy as np
import pytest


@pytest.fixture
def X_small():
    """200 samples of 10 correlated features in [0, 1], like tiny images."""
    rng = np.random.RandomState(0)
    latent = rng.rand(200, 3)
    mixing = rng.rand(3, 10)
    X = latent @ mixing
    return X / X.max()
