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
import itertools
import json
import os
import struct
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import sklearn
import torch

from skae._torch_utils import generator_from_state

FORMAT = "skae"
FORMAT_VERSION = 2
_DIGEST_KEY = "skae_digest"  # in the header's __metadata__, beside "skae"
# From this many bytes of tensor data on, they are hashed while safetensors parses
# them; smaller files are hashed first, which is quicker than starting a thread.
_HASH_WHILE_PARSING = 2**20
_HEADER_LIMIT = 100 * 2**20  # safetensors' own limit on the JSON header
_ADAM_STATE = ("step", "exp_avg", "exp_avg_sq")
_OPTIMIZER_STATE = {
    "adam": _ADAM_STATE,
    "adamw": _ADAM_STATE,
    "sgd": ("momentum_buffer",),
}
_SCALAR_ATTRIBUTES = (
    "n_iter_",
    "loss_",
    "best_loss_",
    "best_validation_score_",
)
_LIST_ATTRIBUTES = ("loss_curve_", "validation_scores_", "validation_loss_curve_")


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
    if hasattr(estimator, "encoder_"):
        metadata["fitted"], tensors = _fitted_state(estimator)
    data = safetensors.torch.save(
        tensors, metadata={"skae": json.dumps(metadata, allow_nan=True)}
    )
    _atomic_write(path, *_with_digest(data, path))


def load_model(path):
    """Read a model written by `save_model`; see `skae.load`."""
    from skae._autoencoder import MLPAutoencoder

    path = Path(path)
    data = path.read_bytes()
    metadata, header, body_start = _read_metadata(data, path)
    tensors = _read_tensors(data, header, body_start, path)
    classes = {"MLPAutoencoder": MLPAutoencoder}
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
        _restore_fitted(estimator, _expect(metadata, "fitted", dict, path), tensors)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelFileError(
            f"{path} is not a valid skae model file: {error}"
        ) from None
    return estimator


def _read_header(data, path):
    """Parse the safetensors header of `data`; return it and where the tensors start."""
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
    return metadata, header, body_start


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


# Fitted state


def _fitted_state(estimator):
    """Return (JSON-able fitted attributes, tensors) of a fitted estimator."""
    tensors = {}
    for prefix, module in (
        ("encoder", estimator.encoder_),
        ("decoder", estimator.decoder_),
    ):
        for name, tensor in module.state_dict().items():
            tensors[f"{prefix}.{name}"] = tensor.detach().cpu().contiguous()
    architecture = dict(estimator._fitted_architecture)
    architecture["hidden_layer_sizes"] = list(architecture["hidden_layer_sizes"])
    fitted = {
        "n_features_in_": int(estimator.n_features_in_),
        "feature_names_in_": (
            [str(name) for name in estimator.feature_names_in_]
            if hasattr(estimator, "feature_names_in_")
            else None
        ),
        "architecture": architecture,
        "optimizer": None,
        "unfinished": None,
    }
    for name in _SCALAR_ATTRIBUTES:
        value = getattr(estimator, name, None)
        fitted[name] = None if value is None else _number(value)
    for name in _LIST_ATTRIBUTES:
        value = getattr(estimator, name, None)
        fitted[name] = None if value is None else [float(item) for item in value]
    optimizer = getattr(estimator, "_optimizer", None)
    if optimizer is not None:
        state = optimizer.state_dict()
        fitted["optimizer"] = {
            "solver": estimator._optimizer_solver,
            "param_groups": state["param_groups"],
        }
        for index, values in state["state"].items():
            for key, tensor in values.items():
                if tensor is not None:
                    tensors[f"optimizer.{index}.{key}"] = tensor.detach().cpu()
    tensors["rng_state"] = estimator._rng_state
    unfinished = getattr(estimator, "_unfinished", None)
    if unfinished is not None:
        stopping = dict(unfinished["stopping"])
        best_state = stopping.pop("best_state")
        stopping["best_score"] = float(stopping["best_score"])
        stopping["best_loss"] = float(stopping["best_loss"])
        stopping["has_best_state"] = best_state is not None
        fitted["unfinished"] = {
            "schedule": unfinished["schedule"],
            "total_steps": int(unfinished["total_steps"]),
            "last_epoch": int(unfinished["last_epoch"]),
            "validation_size": int(unfinished["validation_size"]),
            "scheduler": unfinished["scheduler"],
            "stopping": stopping,
        }
        tensors["unfinished.split_rng_state"] = unfinished["split_rng_state"]
        for prefix, state in zip(
            ("encoder", "decoder"), best_state or (), strict=False
        ):
            for name, tensor in state.items():
                tensors[f"unfinished.best.{prefix}.{name}"] = tensor.detach().cpu()
    return fitted, tensors


def _number(value):
    """Return `value` as a JSON-able int or float (inf included)."""
    return int(value) if isinstance(value, Integral) else float(value)


def _restore_fitted(estimator, fitted, tensors):
    """Rebuild the modules and fitted attributes of `estimator` from a file's state."""
    from skae._modules import build_autoencoder
    from skae._training import make_optimizer

    architecture = _check_architecture(fitted["architecture"])
    n_features = architecture["n_features"]
    n_components = architecture["n_components"]
    # Refuse a file whose architecture disagrees with its tensors before
    # allocating anything the architecture asks for.
    expected = _parameter_count(architecture)
    found = sum(
        tensor.numel()
        for name, tensor in tensors.items()
        if name.startswith(("encoder.", "decoder."))
    )
    if expected != found:
        raise ValueError(
            f"the architecture has {expected} weights but the file holds {found}."
        )
    pca = None
    if architecture["init"] == "pca":
        pca = (torch.zeros(n_components, n_features), torch.zeros(n_features))
    encoder, decoder = build_autoencoder(
        n_features,
        architecture["hidden_layer_sizes"],
        n_components,
        activation=architecture["activation"],
        latent_activation=architecture["latent_activation"],
        output_activation=architecture["output_activation"],
        generator=torch.Generator().manual_seed(0),
        pca=pca,
    )
    for prefix, module in (("encoder", encoder), ("decoder", decoder)):
        module.load_state_dict(_matching(module.state_dict(), tensors, f"{prefix}."))
    unknown = {
        name
        for name in tensors
        if not name.startswith(("encoder.", "decoder.", "optimizer.", "unfinished."))
        and name != "rng_state"
    }
    if unknown:
        raise ValueError(f"unexpected tensors {sorted(unknown)}.")
    encoder.eval()
    decoder.eval()

    n_features_in = fitted["n_features_in_"]
    if n_features_in != n_features:
        raise ValueError(
            f"n_features_in_={n_features_in!r} differs from the architecture's "
            f"{n_features}."
        )
    names = fitted.get("feature_names_in_")
    if names is not None:
        if not isinstance(names, list) or len(names) != n_features:
            raise ValueError(f"feature_names_in_ should list {n_features} names.")
        estimator.feature_names_in_ = np.asarray([str(n) for n in names], dtype=object)
    estimator.n_features_in_ = n_features
    for name in _SCALAR_ATTRIBUTES:
        value = fitted.get(name)
        if value is not None and not isinstance(value, Real):
            raise ValueError(f"{name} should be a number, got {value!r}.")
        if value is not None or name != "loss_":
            setattr(estimator, name, value)
    if not isinstance(estimator.n_iter_, Integral) or estimator.n_iter_ < 0:
        raise ValueError(f"n_iter_ should be an int >= 0, got {estimator.n_iter_!r}.")
    for name in _LIST_ATTRIBUTES:
        value = fitted.get(name)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, Real) for v in value)
        ):
            raise ValueError(f"{name} should be a list of numbers.")
        setattr(estimator, name, value)

    estimator.encoder_ = encoder
    estimator.decoder_ = decoder
    estimator._device = torch.device("cpu")
    estimator._fitted_architecture = architecture
    estimator._n_features_out = n_components
    estimator._rng_state = _rng_state(tensors.get("rng_state"), "rng_state")

    estimator._optimizer = None
    estimator._optimizer_solver = estimator.solver
    optimizer_state = fitted.get("optimizer")
    if optimizer_state is not None:
        solver = optimizer_state["solver"]
        if solver not in _OPTIMIZER_STATE:
            raise ValueError(f"unknown solver {solver!r}.")
        parameters = [*encoder.parameters(), *decoder.parameters()]
        optimizer = make_optimizer(
            parameters, solver, estimator.learning_rate_init, estimator.momentum
        )
        state = _optimizer_tensors(tensors, parameters, solver)
        groups = optimizer_state["param_groups"]
        for group in groups:
            if "betas" in group:
                group["betas"] = tuple(group["betas"])
        optimizer.load_state_dict({"state": state, "param_groups": groups})
        estimator._optimizer = optimizer
        estimator._optimizer_solver = solver
    elif any(name.startswith("optimizer.") for name in tensors):
        raise ValueError("optimizer tensors without optimizer metadata.")

    estimator._unfinished = _unfinished(
        fitted.get("unfinished"), tensors, encoder, decoder
    )


def _check_architecture(architecture):
    """Check the types and ranges of a file's architecture; return it as used."""
    from skae._modules import ACTIVATIONS

    if not isinstance(architecture, dict):
        raise TypeError("architecture should be a JSON object.")
    for key in ("n_features", "n_components"):
        value = architecture.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"architecture[{key!r}] should be an int >= 1.")
    sizes = architecture.get("hidden_layer_sizes")
    if not isinstance(sizes, list) or not all(
        isinstance(size, int) and not isinstance(size, bool) and size >= 1
        for size in sizes
    ):
        raise ValueError("architecture['hidden_layer_sizes'] should list ints >= 1.")
    for key in ("activation", "latent_activation", "output_activation"):
        if architecture.get(key) not in ACTIVATIONS:
            raise ValueError(
                f"architecture[{key!r}] is not one of {sorted(ACTIVATIONS)}."
            )
    if architecture.get("init") not in ("pca", "random"):
        raise ValueError("architecture['init'] should be 'pca' or 'random'.")
    return {**architecture, "hidden_layer_sizes": tuple(sizes)}


def _parameter_count(architecture):
    """Return the number of weights and biases the architecture's modules hold."""
    sizes = [
        architecture["n_features"],
        *architecture["hidden_layer_sizes"],
        architecture["n_components"],
    ]

    def mlp(widths):
        return sum((n_in + 1) * n_out for n_in, n_out in itertools.pairwise(widths))

    mlps = mlp(sizes) + mlp(sizes[::-1])
    if architecture["init"] == "random":
        return mlps
    # The PCA start: a linear path each way, plus the MLPs when there are any.
    n_features, n_components = sizes[0], sizes[-1]
    linear = mlp([n_features, n_components]) + mlp([n_components, n_features])
    return linear + (mlps if architecture["hidden_layer_sizes"] else 0)


def _matching(expected, tensors, prefix):
    """Return the file's tensors under `prefix`, checked against `expected`."""
    found = {
        name[len(prefix) :]: tensor
        for name, tensor in tensors.items()
        if name.startswith(prefix)
    }
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        raise ValueError(
            f"the {prefix[:-1]} tensors do not match the architecture: missing "
            f"{missing}, unexpected {extra}."
        )
    for name, tensor in found.items():
        want = expected[name]
        if tensor.dtype != want.dtype or tensor.shape != want.shape:
            raise ValueError(
                f"tensor {prefix}{name} is {tensor.dtype} of shape "
                f"{tuple(tensor.shape)}; expected {want.dtype} of shape "
                f"{tuple(want.shape)}."
            )
    return found


def _optimizer_tensors(tensors, parameters, solver):
    """Return the optimizer's per-parameter state, checked against the weights."""
    keys = _OPTIMIZER_STATE[solver]
    state = {}
    for name, tensor in tensors.items():
        if not name.startswith("optimizer."):
            continue
        _, index, key = name.split(".", 2)
        if not index.isdigit() or int(index) >= len(parameters) or key not in keys:
            raise ValueError(f"unexpected optimizer tensor {name}.")
        parameter = parameters[int(index)]
        shape = () if key == "step" else parameter.shape
        if tensor.dtype != torch.float32 or tensor.shape != shape:
            raise ValueError(
                f"tensor {name} is {tensor.dtype} of shape {tuple(tensor.shape)}; "
                f"expected torch.float32 of shape {tuple(shape)}."
            )
        state.setdefault(int(index), {})[key] = tensor
    return state


def _rng_state(tensor, name):
    """Check a CPU generator state read from a file."""
    if tensor is None:
        raise ValueError(f"the tensor {name} is missing.")
    if tensor.dtype != torch.uint8:
        raise ValueError(f"tensor {name} should be uint8, not {tensor.dtype}.")
    generator_from_state(tensor)  # raises RuntimeError on a malformed state
    return tensor


def _unfinished(state, tensors, encoder, decoder):
    """Rebuild what `resume` needs from a mid-fit checkpoint, or None."""
    if state is None:
        if any(name.startswith("unfinished.") for name in tensors):
            raise ValueError("resume tensors without resume metadata.")
        return None
    stopping = dict(state["stopping"])
    best_state = None
    if stopping.pop("has_best_state"):
        best_state = [
            _matching(module.state_dict(), tensors, f"unfinished.best.{prefix}.")
            for prefix, module in (("encoder", encoder), ("decoder", decoder))
        ]
    return {
        "schedule": state["schedule"],
        "total_steps": int(state["total_steps"]),
        "last_epoch": int(state["last_epoch"]),
        "validation_size": int(state["validation_size"]),
        "scheduler": state["scheduler"],
        "split_rng_state": _rng_state(
            tensors.get("unfinished.split_rng_state"), "unfinished.split_rng_state"
        ),
        "stopping": {**stopping, "best_state": best_state},
    }


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
