"""Devices and random generators for the torch side. Never imports scikit-learn."""

import ctypes
import ctypes.util
import numbers
import sys

import numpy as np
import torch

DEVICE_NAMES = ("cpu", "cuda", "mps", "auto")


def resolve_device(name):
    """Return the torch.device named by `name`, checking that it is available.

    "auto" picks the first of cuda, mps and cpu that is available.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device={name!r} is not a torch device; use one of {DEVICE_NAMES} "
            "or an indexed one such as 'cuda:1'."
        ) from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={name!r} but CUDA is not available on this machine; "
                "use device='cpu' or device='auto'."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={name!r} but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device={name!r} but MPS is not available on this machine; "
            "use device='cpu' or device='auto'."
        )
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"device={name!r} is not supported; use one of {DEVICE_NAMES}."
        )
    return device


def shared_seed(random_state):
    """Return the int seed `make_generator` draws from a scikit-learn `random_state`.

    For runs that must share one seed (the widths of a search, the folds of a
    cross-validation): each then starts as a fit with ``random_state=seed``.
    """
    if random_state is None:
        random_state = np.random.mtrand._rand
    if isinstance(random_state, numbers.Integral):
        seed = int(random_state)
    elif isinstance(random_state, np.random.RandomState):
        seed = int(random_state.randint(np.iinfo(np.int32).max))
    else:
        raise ValueError(
            f"random_state={random_state!r} must be None, an int or a "
            "numpy.random.RandomState."
        )
    return seed


def make_generator(random_state):
    """Return a CPU torch.Generator seeded from a scikit-learn `random_state`.

    An int seeds the generator directly, so a model built with seed s draws the
    same initial weights as torch's own layers after ``torch.manual_seed(s)``.
    None draws one seed from NumPy's global random state, as every scikit-learn
    estimator does (so ``np.random.seed`` makes fits reproducible), and a
    RandomState draws one seed from itself. The global torch state is never used.
    """
    seed = shared_seed(random_state)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    return generator


def generator_from_state(state):
    """Return a CPU torch.Generator continuing from `state` (a ``get_state()``).

    Raises RuntimeError when `state` is not a valid generator state.
    """
    generator = torch.Generator(device="cpu")
    generator.set_state(state)
    return generator


def module_device(module):
    """Return the device of `module`'s parameters (the CPU for none)."""
    parameter = next(module.parameters(), None)
    return torch.device("cpu") if parameter is None else parameter.device


# Training data stays on an accelerator when it takes at most this fraction of
# the memory free there; the model, its gradients and a batch need the rest.
DEVICE_DATA_FRACTION = 0.5


def data_device(n_bytes, device):
    """Return where training data of `n_bytes` should live for a model on `device`.

    On a CUDA device the data lives there when it fits, so that batches are
    gathered on the device without a copy from the host per batch; otherwise
    (and on other devices) it stays in host memory.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return device
    free, _ = torch.cuda.mem_get_info(device)
    return device if n_bytes <= DEVICE_DATA_FRACTION * free else torch.device("cpu")


def _malloc_trim():
    """Return glibc's malloc_trim, or None where the C library has none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _malloc_trim()


def release_memory():
    """Give the memory the C heap holds free back to the system (glibc only).

    Densifying sparse rows allocates and frees tens of MB per batch; glibc
    keeps such freed blocks in its heaps, where they fragment, so a process's
    memory can grow to several times what it uses (bench/sparse.py: about 3 GB
    against 0.5 GB live, at the end-of-fit comparison). A no-op elsewhere.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
