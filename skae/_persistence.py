"""Safe model files: safetensors tensors plus JSON metadata, never pickle.

A skae model file is one safetensors file. Its header's ``__metadata__`` holds,
under the key ``"skae"``, a JSON document: the format version, the estimator's
class and parameters, its fitted attributes and the library versions. The
tensors are the modules' weights, the optimizer's state and the random state.

Loading parses that JSON and hands the bytes to safetensors' parser, which only
reads numbers: nothing in a file can run code. Everything read is checked
(class, parameters, names, shapes, dtypes) before the estimator is rebuilt.
"""

import json
import os
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import sklearn
import torch

FORMAT = "skae"
FORMAT_VERSION = 1
_HEADER_LIMIT = 100 * 2**20  # safetensors' own limit on the JSON header


class ModelFileError(ValueError):
    """A file that `skae.load` refuses: not a skae model, or not a valid one.

    A subclass of ValueError, so ``except ValueError`` catches it too. Its
    message names the file and what is wrong with it.

    See Also
    --------
    skae.load : Raises it.

    Examples
    --------
    >>> import os, pickle, tempfile, skae
    >>> path = os.path.join(tempfile.mkdtemp(), "model.pkl")
    >>> with open(path, "wb") as f:
    ...     pickle.dump({"not": "a model"}, f)
    >>> try:
    ...     skae.load(path)
    ... except skae.ModelFileError as error:
    ...     print("is a pickle, not a skae model file" in str(error))
    True
    """


def save_model(estimator, path, *, warn_dropped=True):
    """Write `estimator` to `path` atomically; see `MLPAutoencoder.save`."""
    from skae import __version__

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"Cannot save the model to {path}: it is a directory.")
    params, dropped = _params_to_json(estimator.get_params(deep=False))
    if dropped and warn_dropped:
        warnings.warn(
            f"Not saved: {', '.join(dropped)} (only JSON values are stored in a "
            "model file); the loaded model has them at their defaults.",
            UserWarning,
            stacklevel=3,
        )
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": type(estimator).__name__,
        "versions": {
            "skae": __version__,
            "torch": torch.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "params": params,
        "fitted": None,
    }
    tensors = {}
    fitted = estimator._to_file()
    if fitted is not None:
        metadata["fitted"], tensors = fitted
    data = safetensors.torch.save(
        tensors, metadata={"skae": json.dumps(metadata, allow_nan=True)}
    )
    _atomic_write(path, data)


def load_model(path, classes):
    """Read a model written by `save_model`; see `skae.load`.

    `classes` maps the class names a file may hold to the estimator classes;
    each has ``_from_file(fitted_metadata, tensors)``.
    """
    path = Path(path)
    data = path.read_bytes()
    metadata = _read_metadata(data, path)
    name = metadata.get("class")
    if name not in classes:
        raise ModelFileError(
            f"{path} names the class {name!r}, which skae does not know: it can "
            f"load {sorted(classes)}."
        )
    try:
        tensors = safetensors.torch.load(data)
    except (safetensors.SafetensorError, ValueError, RuntimeError) as error:
        raise ModelFileError(
            f"{path} is not a valid skae model file: {error}"
        ) from None
    estimator = classes[name]()
    params = _expect(metadata, "params", dict, path)
    try:
        estimator.set_params(**_params_from_json(params))
        estimator._validate_params()
    except (ValueError, TypeError) as error:
        raise ModelFileError(f"{path} holds invalid parameters: {error}") from None
    fitted = metadata.get("fitted")
    if fitted is None:
        if tensors:
            raise ModelFileError(f"{path} holds weights but no fitted attributes.")
        return estimator
    try:
        estimator._from_file(_expect(metadata, "fitted", dict, path), tensors)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelFileError(
            f"{path} is not a valid skae model file: {error}"
        ) from None
    return estimator


def _read_metadata(data, path):
    """Parse the safetensors header of `data` and return skae's JSON metadata."""
    if data[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        kind = "a pickle"
    elif data[:4] == b"PK\x03\x04":
        kind = "a zip archive (torch.save writes those)"
    else:
        kind = None
    if kind is not None:
        raise ModelFileError(
            f"{path} is {kind}, not a skae model file. skae.load reads only files "
            "written by MLPAutoencoder.save, and never unpickles: pickles can run "
            "code when loaded. Load a pickle with pickle.load only if you trust "
            "where it came from."
        )
    if len(data) < 8:
        raise ModelFileError(
            f"{path} is not a skae model file: it is {len(data)} bytes long, too "
            "short for a safetensors header (truncated?)."
        )
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > min(len(data) - 8, _HEADER_LIMIT):
        raise ModelFileError(
            f"{path} is not a skae model file: its header claims {header_size} "
            f"bytes but the file has {len(data) - 8} after the length (truncated, "
            "or another format)."
        )
    try:
        header = json.loads(data[8 : 8 + header_size])
        metadata = json.loads(header["__metadata__"]["skae"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ModelFileError(
            f"{path} is not a skae model file: its header has no skae metadata."
        ) from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a skae model file: wrong format tag.")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path} is a skae model file of format version {version!r}; this skae "
            f"reads version {FORMAT_VERSION}. Load it with the skae that wrote it "
            f"({metadata.get('versions', {}).get('skae', 'unknown')})."
        )
    return metadata


def _expect(mapping, key, kind, where):
    """Return mapping[key], checked to be an instance of `kind`."""
    value = mapping.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ModelFileError(
            f"{where}: {key!r} should be {getattr(kind, '__name__', kind)}, got "
            f"{type(value).__name__}."
        )
    return value


# Parameters


def _params_to_json(params):
    """Return (params that JSON can hold, names of those it cannot)."""
    stored, dropped = {}, []
    for name, value in params.items():
        if name == "callbacks":
            if value:
                dropped.append("callbacks")
            stored[name] = None
            continue
        if isinstance(value, torch.device):
            value = str(value)
        if isinstance(value, np.integer | np.floating):
            value = value.item()
        if isinstance(value, tuple):
            value = list(value)
        try:
            json.dumps(value, allow_nan=True)
        except TypeError:
            dropped.append(name)
            continue
        stored[name] = value
    return stored, dropped


def _params_from_json(params):
    """Undo `_params_to_json` where JSON changed the type."""
    params = dict(params)
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    return params


# Files


def _atomic_write(path, data):
    """Write `data` to a temporary file beside `path`, then rename it over `path`.

    A crash at any point leaves either the old file or the new one, never a mix.
    """
    directory = path.parent if str(path.parent) else Path(".")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
