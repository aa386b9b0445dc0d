"""Safe model files: safetensors tensors plus JSON metadata, never pickle.

A skae model file is one safetensors file. Its header's ``__metadata__`` holds,
under the key ``"skae"``, a JSON document: the format version, the estimator's
class and parameters, its fitted attributes and the library versions. The
tensors are the modules' weights, the optimizer's state and the random state.
Beside it, under ``"skae_digest"``, a SHA-256 digest of everything else in the
file: the rest of the header and every byte of tensor data (format version 2).

Loading parses that JSON and hands the bytes to safetensors' parser, which only
reads numbers: nothing in a file can run code. A file whose digest does not
match is refused as damaged before any of its tensors is used; everything else
read is checked (class, parameters, names, shapes, dtypes) before the estimator
is rebuilt.
"""

import hashlib
import json
import os
import struct
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import sklearn
import torch

from skae._state import TrainingState
from skae._version import __version__

FORMAT = "skae"
FORMAT_VERSION = 2
_DIGEST_KEY = "skae_digest"  # in the header's __metadata__, beside "skae"
# From this many bytes of tensor data on, they are hashed while safetensors parses
# them; smaller files are hashed first, which is quicker than starting a thread.
_HASH_WHILE_PARSING = 2**20
_HEADER_LIMIT = 100 * 2**20  # safetensors' own limit on the JSON header


class ModelFileError(ValueError):
    """A file that `skae.load` refuses: not a skae model, not a valid one, or damaged.

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


def written_fitted(state, fitted):
    """Return (JSON-able fitted metadata, tensors) of an estimator's fitted state.

    `fitted` is the estimator's ``__dict__``: the recorded features, the output
    configuration and the width search's results go with the state.
    """
    metadata, tensors = state.to_tensors()
    names = fitted.get("feature_names_in_")
    metadata["n_features_in_"] = int(fitted["n_features_in_"])
    metadata["output_config"] = fitted.get("_sklearn_output_config")
    metadata["feature_names_in_"] = (
        None if names is None else [str(name) for name in names]
    )
    metadata["explained_variance_score_"] = fitted.get("explained_variance_score_")
    metadata["n_components_search_"] = fitted.get("n_components_search_")
    return metadata, tensors


def read_fitted(metadata, tensors, *, tol, n_iter_no_change):
    """Return (state, features, sizing, output config) of `written_fitted`'s output.

    Raises ValueError for anything a file may not hold.
    """
    state = TrainingState.from_tensors(
        metadata, tensors, tol=tol, n_iter_no_change=n_iter_no_change
    )
    n_features = state.architecture["n_features"]
    if metadata["n_features_in_"] != n_features:
        raise ValueError(
            f"n_features_in_={metadata['n_features_in_']!r} differs from the "
            f"architecture's {n_features}."
        )
    features = {"n_features_in_": n_features}
    names = metadata.get("feature_names_in_")
    if names is not None:
        if not isinstance(names, list) or len(names) != n_features:
            raise ValueError(f"feature_names_in_ should list {n_features} names.")
        features["feature_names_in_"] = np.asarray(
            [str(name) for name in names], dtype=object
        )
    sizing = check_sizing_metadata(
        metadata.get("explained_variance_score_"),
        metadata.get("n_components_search_"),
    )
    output_config = metadata.get("output_config")
    if output_config is not None:
        if not (
            isinstance(output_config, dict)
            and set(output_config) <= {"transform"}
            and all(
                v in ("default", "pandas", "polars") for v in output_config.values()
            )
        ):
            raise ValueError(f"output_config {output_config!r} is not valid.")
        output_config = dict(output_config)
    return state, features, sizing, output_config


def check_sizing_metadata(explained_variance, search):
    """Return a model file's (explained_variance_score_, n_components_search_)."""
    if explained_variance is not None and not _is_number(explained_variance):
        raise ValueError("explained_variance_score_ should be a number or null.")
    if search is not None:
        keys = {"n_components", "explained_variance", "n_iter", "seconds"}
        if not isinstance(search, list) or not all(
            isinstance(entry, dict)
            and set(entry) == keys
            and all(_is_number(value) for value in entry.values())
            for entry in search
        ):
            raise ValueError(
                "n_components_search_ should list objects with the keys "
                f"{sorted(keys)}."
            )
        search = [dict(entry) for entry in search]
    return (None if explained_variance is None else float(explained_variance)), search


def _is_number(value):
    """Whether a JSON value is a number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def save_model(estimator, path, *, warn_dropped=True):
    """Write `estimator` to `path` atomically; see `MLPAutoencoder.save`."""
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
    _atomic_write(path, *_with_digest(data, path))


def load_model(path, classes):
    """Read a model written by `save_model`; see `skae.load`.

    `classes` maps the class names a file may hold to the estimator classes;
    each has ``_from_file(fitted_metadata, tensors)``.
    """
    path = Path(path)
    data = path.read_bytes()
    metadata, header, body_start = _read_metadata(data, path)
    tensors = _read_tensors(data, header, body_start, path)
    name = metadata.get("class")
    if name not in classes:
        raise ModelFileError(
            f"{path} names the class {name!r}, which skae does not know: it can "
            f"load {sorted(classes)}."
        )
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


def _read_header(data, path):
    """Parse the safetensors header of `data`; return it and where the tensors start."""
    # A safetensors header is JSON after its 8-byte length, whose first bytes
    # may look like a pickle's (a length of 0x380 starts with 0x80 0x03).
    if data[8:10] == b'{"':
        kind = None
    elif data[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
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
        header = json.loads(data[8 : 8 + header_size], object_pairs_hook=_unique_keys)
    except (ValueError, UnicodeDecodeError, RecursionError):
        header = None
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__"), dict):
        raise ModelFileError(
            f"{path} is not a skae model file: its header has no skae metadata."
        )
    return header, 8 + header_size


def _unique_keys(pairs):
    """Build a JSON object, refusing duplicate keys: JSON parsers disagree on them."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate keys")
    return obj


def _read_metadata(data, path):
    """Return skae's JSON metadata, the safetensors header, where the tensors start."""
    header, body_start = _read_header(data, path)
    try:
        metadata = json.loads(header["__metadata__"]["skae"])
    except (ValueError, KeyError, TypeError, RecursionError):
        raise ModelFileError(
            f"{path} is not a skae model file: its header has no skae metadata."
        ) from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a skae model file: wrong format tag.")
    version = metadata.get("format_version")
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        versions = metadata.get("versions")
        if not isinstance(versions, dict):
            versions = {}
        raise ModelFileError(
            f"{path} is a skae model file of format version {version!r}; this skae "
            f"reads versions 1 to {FORMAT_VERSION}. Load it with the skae that wrote "
            f"it ({versions.get('skae', 'unknown')})."
        )
    has_digest = _DIGEST_KEY in header["__metadata__"]
    if version == 1 and has_digest:
        raise ModelFileError(
            f"{path} is damaged: it says format version 1, which has no digest, "
            "yet it carries one."
        )
    if version > 1 and not has_digest:
        raise ModelFileError(
            f"{path} is damaged: a file of format version {version} carries a "
            "digest of its contents, and this one has none."
        )
    if version == 1:
        warnings.warn(
            f"{path} was saved in format version 1, without a digest: its "
            "integrity cannot be checked. Save it again to add one.",
            UserWarning,
            stacklevel=4,
        )
    _check_writer(metadata, version, path)
    return metadata, header, body_start


def _check_writer(metadata, format_version, path):
    """Refuse a file that names no skae version; warn for one from a newer skae.

    The format version decides what can be read. Every skae that reads a
    format reads it whole, so a file from an older skae loads as it was saved;
    a newer skae may have written parameters or behaviours this one lacks.
    """
    versions = metadata.get("versions")
    written_by = versions.get("skae") if isinstance(versions, dict) else None
    if not isinstance(written_by, str):
        if format_version == 1:
            return
        raise ModelFileError(
            f"{path} is damaged: a skae model file names the skae version that "
            f"wrote it, and this one has {written_by!r}."
        )
    if not _release(written_by):
        warnings.warn(
            f"{path} names skae {written_by!r} as the version that wrote it, "
            "which is not a version number: it loads, as its format (version "
            f"{format_version}) is one this skae reads, but where it comes from "
            "is not known.",
            UserWarning,
            stacklevel=5,
        )
    elif _release(written_by) > _release(__version__):
        warnings.warn(
            f"{path} was written by skae {written_by}, newer than this skae "
            f"{__version__}. It loads, as its format (version {format_version}) "
            "is one this skae reads, but what skae added since is not known "
            "here: upgrade skae to use the model as it was saved.",
            UserWarning,
            stacklevel=5,
        )


def _release(version):
    """Return the numeric release of a version string, e.g. (0, 1, 0) of '0.1.0rc1'."""
    numbers = []
    for part in version.split("."):
        digits = ""
        for character in part:
            if not character.isdigit():
                break
            digits += character
        if not digits:
            break
        numbers.append(int(digits))
        if len(digits) < len(part):
            break
    return tuple(numbers)


def _read_tensors(data, header, body_start, path):
    """Parse the tensors of `data`, refusing them if the file's digest differs."""
    expected = header["__metadata__"].get(_DIGEST_KEY)
    body = memoryview(data)[body_start:]
    beside = expected is not None and len(body) >= _HASH_WHILE_PARSING
    if expected is not None and not beside:
        _check_digest(_digest(header, body), expected, path)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # hashlib releases the GIL: a large file is hashed while safetensors
        # parses it, and nothing parsed is used, nor any parser error
        # reported, before the digests are compared.
        digest = pool.submit(_digest, header, body) if beside else None
        try:
            tensors, error = safetensors.torch.load(data), None
        except (safetensors.SafetensorError, ValueError, RuntimeError) as caught:
            tensors, error = None, caught
        except KeyError as caught:  # a dtype that safetensors knows and torch does not
            tensors, error = None, f"unknown dtype {caught}"
    if digest is not None:
        _check_digest(digest.result(), expected, path)
    if error is not None:
        raise ModelFileError(f"{path} is not a valid skae model file: {error}")
    return tensors


def _check_digest(digest, expected, path):
    """Refuse the file at `path` as damaged unless `digest` is the one it carries."""
    if digest != expected:
        raise ModelFileError(
            f"{path} is damaged: the SHA-256 digest of its contents does not match "
            "the one saved with it (a bad disk, an interrupted copy or an edit?). "
            "Load a good copy of it."
        )


def _digest(header, body):
    """Return SHA-256 of the header less its digest, as canonical JSON, then `body`."""
    metadata = {
        key: value
        for key, value in header["__metadata__"].items()
        if key != _DIGEST_KEY
    }
    covered = {**header, "__metadata__": metadata}
    hasher = hashlib.sha256(
        json.dumps(covered, sort_keys=True, separators=(",", ":")).encode()
    )
    hasher.update(body)
    return f"sha256:{hasher.hexdigest()}"


def _with_digest(data, path):
    """Return safetensors' `data` as (header, tensor data), the digest added."""
    header, body_start = _read_header(data, path)
    body = memoryview(data)[body_start:]
    header["__metadata__"][_DIGEST_KEY] = _digest(header, body)
    text = json.dumps(header, separators=(",", ":")).encode()
    # Spaces after the JSON keep the tensor data 8-byte aligned, as safetensors does.
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, body


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


def _atomic_write(path, *chunks):
    """Write `chunks` to a temporary file beside `path`, then rename it over `path`.

    A crash at any point leaves either the old file or the new one, never a mix.
    """
    directory = path.parent if str(path.parent) else Path(".")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
