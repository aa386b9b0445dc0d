"""skae: scikit-learn compatible autoencoders on PyTorch."""

from skae._autoencoder import MLPAutoencoder
from skae._imputer import AutoencoderImputer
from skae._persistence import ModelFileError, load_model
from skae._version import __version__


def load(path):
    """Load a model written by `MLPAutoencoder.save`, without running any code.

    The file's SHA-256 digest is compared with its contents before any of its
    tensors is used, and a damaged file is refused. Its metadata and tensors
    are then checked (class, parameters, names, shapes, dtypes) before the
    estimator is rebuilt. Pickles, ``torch.save`` archives, truncated files and
    files naming an unknown class are refused. The weights are loaded on the
    CPU.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by `MLPAutoencoder.save` or `skae.callbacks.Checkpoint`.

    Returns
    -------
    estimator : MLPAutoencoder
        Fitted if it was fitted when saved; a checkpoint taken during a fit can
        finish it with ``resume(X)``.

    Raises
    ------
    ModelFileError
        A ValueError naming the file and what is wrong with it, e.g. that it is
        damaged.

    Warns
    -----
    UserWarning
        For a file of format version 1, saved before skae wrote digests: its
        integrity cannot be checked.

    See Also
    --------
    MLPAutoencoder.save : Writes these files.
    skae.callbacks.Checkpoint : Writes them during a fit, to resume it.

    Examples
    --------
    >>> import numpy as np, os, tempfile, skae
    >>> X = np.random.RandomState(0).rand(50, 6)
    >>> ae = skae.MLPAutoencoder(2, max_iter=3, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skae")
    >>> loaded = skae.load(ae.save(path) and path)
    >>> bool(np.array_equal(loaded.transform(X), ae.transform(X)))
    True
    """
    return load_model(path, {"MLPAutoencoder": MLPAutoencoder})


__all__ = [
    "AutoencoderImputer",
    "MLPAutoencoder",
    "ModelFileError",
    "__version__",
    "load",
]
