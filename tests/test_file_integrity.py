"""Model files that notice damage: the digest, old files, and a fuzz of bad files."""

import copy
import hashlib
import json
import struct
import tracemalloc
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
from numpy.testing import assert_array_equal

import skae
import skae._persistence
from skae import MLPAutoencoder, ModelFileError
from skae._persistence import _atomic_write, _with_digest
from skae.callbacks import Checkpoint

from _helpers import same_weights, weights

# Written by skae 0.1.0 in format version 1 (commit 8aac91e, before digests):
# MLPAutoencoder(n_components=2, hidden_layer_sizes=(4,), max_iter=1,
# random_state=0).fit(np.random.default_rng(0).random((20, 8))).save(path)
VERSION_1_FILE = Path(__file__).parent / "data" / "format_v1.skae"


def small_data():
    return np.random.default_rng(0).random((20, 8))


def small_model():
    """The defaults but for a tiny network: a file of about 12 KB."""
    return MLPAutoencoder(
        n_components=2, hidden_layer_sizes=(4,), max_iter=1, random_state=0
    ).fit(small_data())


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(file bytes, the model's codes, its reconstructions) of a saved small model."""
    path = tmp_path_factory.mktemp("saved") / "model.skae"
    model = small_model()
    model.save(path)
    codes = model.transform(small_data())
    return path.read_bytes(), codes, model.inverse_transform(codes)


def split(data):
    """Return (header, tensor data) of a safetensors file."""
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def join(header, body):
    """Return a safetensors file with `header` (padded as safetensors does)."""
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def documented_digest(data):
    """The digest as docs/user_guide/saving.rst tells how to compute it."""
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    header["__metadata__"].pop("skae_digest")
    covered = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(covered + data[8 + size :]).hexdigest()


def resign(path):
    """Give a file a digest of what it now holds, as an editor on purpose could."""
    header, body = split(path.read_bytes())
    header["__metadata__"].pop("skae_digest", None)
    _atomic_write(path, *_with_digest(join(header, body), path))


def load_quietly(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return skae.load(path)


# The digest


def test_saved_files_carry_the_documented_digest(tmp_path):
    path = tmp_path / "m.skae"
    small_model().save(path)
    data = path.read_bytes()
    header, _ = split(data)
    assert json.loads(header["__metadata__"]["skae"])["format_version"] == 2
    assert header["__metadata__"]["skae_digest"] == documented_digest(data)
    # The file stays a plain safetensors file.
    assert set(safetensors.torch.load(data)) == set(header) - {"__metadata__"}


def test_unfitted_models_carry_a_digest_too(tmp_path):
    path = tmp_path / "m.skae"
    MLPAutoencoder(n_components=3).save(path)
    data = path.read_bytes()
    assert split(data)[0]["__metadata__"]["skae_digest"] == documented_digest(data)
    assert skae.load(path).n_components == 3


def test_a_changed_tensor_byte_is_refused_as_damage(tmp_path, saved):
    data, _, _ = saved
    damaged = bytearray(data)
    damaged[-1] ^= 0x01  # the last byte of the last tensor
    path = tmp_path / "m.skae"
    path.write_bytes(damaged)
    with pytest.raises(ModelFileError, match=r"m\.skae is damaged: .*digest"):
        skae.load(path)


def test_swapped_tensor_offsets_are_refused(tmp_path, saved):
    # Same dtype and shape: the file would load as another model without the
    # tensor table in the digest.
    header, body = split(saved[0])
    first = "encoder.linear.0.weight"
    second = next(
        name
        for name in header
        if name.endswith(".exp_avg") and header[name]["shape"] == header[first]["shape"]
    )
    header[first]["data_offsets"], header[second]["data_offsets"] = (
        header[second]["data_offsets"],
        header[first]["data_offsets"],
    )
    path = tmp_path / "m.skae"
    path.write_bytes(join(header, body))
    with pytest.raises(ModelFileError, match="is damaged"):
        skae.load(path)


def test_an_edited_activation_is_refused(tmp_path, saved):
    # gelu -> relu is one byte, and both are valid: the digest covers the metadata.
    data, _, _ = saved
    index = data.index(b'\\"activation\\": \\"gelu')
    damaged = bytearray(data)
    damaged[index + len(b'\\"activation\\": \\"')] = ord("r")
    path = tmp_path / "m.skae"
    path.write_bytes(damaged)
    with pytest.raises(ModelFileError, match="is damaged"):
        skae.load(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda meta: meta.pop("skae_digest"), "carries a digest .* has none"),
        (lambda meta: meta.update(skae_digest="sha256:" + "0" * 64), "digest"),
        (lambda meta: meta.update(skae_digest=7), "digest"),
    ],
)
def test_a_missing_or_wrong_digest_is_refused(tmp_path, saved, edit, message):
    header, body = split(saved[0])
    edit(header["__metadata__"])
    path = tmp_path / "m.skae"
    path.write_bytes(join(header, body))
    with pytest.raises(ModelFileError, match=f"is damaged: .*{message}"):
        skae.load(path)


def test_a_checkpoint_carries_a_digest_and_a_damaged_one_is_refused(tmp_path):
    checkpoint = Checkpoint(tmp_path / "ckpt-{epoch}.skae")
    MLPAutoencoder(
        n_components=2,
        hidden_layer_sizes=(4,),
        max_iter=3,
        early_stopping=False,
        callbacks=[checkpoint],
    ).fit(small_data())
    first, second, _ = checkpoint.saved_
    data = first.read_bytes()
    assert split(data)[0]["__metadata__"]["skae_digest"] == documented_digest(data)
    damaged = bytearray(data)
    damaged[len(data) - len(split(data)[1]) // 2] ^= 0x80  # amid the tensors
    first.write_bytes(damaged)
    with pytest.raises(ModelFileError, match=r"ckpt-1\.skae is damaged"):
        skae.load(first)
    second.write_bytes(second.read_bytes()[:-1000])  # an interrupted copy
    with pytest.raises(ModelFileError, match=r"ckpt-2\.skae is damaged"):
        skae.load(second)


# Files of format version 1, written before the digest


def test_a_version_1_file_loads_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="version 1.*integrity cannot be checked"):
        model = skae.load(VERSION_1_FILE)
    # The weights as stored (beside them: the optimizer's state, the random state).
    stored = safetensors.torch.load_file(VERSION_1_FILE)
    stored = {k: v for k, v in stored.items() if k.startswith(("encoder.", "decoder."))}
    assert same_weights(weights(model), stored)
    # Saved again, it gains a digest and loads without the warning.
    model.save(tmp_path / "again.skae")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = skae.load(tmp_path / "again.skae")
    X = small_data()
    assert_array_equal(again.transform(X), model.transform(X))
    assert_array_equal(again.reconstruct(X), model.reconstruct(X))


def test_a_version_1_file_with_a_digest_is_refused(tmp_path):
    header, body = split(VERSION_1_FILE.read_bytes())
    header["__metadata__"]["skae_digest"] = "sha256:" + "0" * 64
    path = tmp_path / "m.skae"
    path.write_bytes(join(header, body))
    with pytest.raises(ModelFileError, match=r"says format version 1.*carries one"):
        skae.load(path)


@pytest.mark.parametrize("version", [3, 0, "2", 2.0, True, None])
def test_unknown_format_versions_are_refused(tmp_path, saved, version):
    header, body = split(saved[0])
    metadata = json.loads(header["__metadata__"]["skae"])
    metadata["format_version"] = version
    header["__metadata__"]["skae"] = json.dumps(metadata)
    path = tmp_path / "m.skae"
    path.write_bytes(join(header, body))
    resign(path)
    with pytest.raises(ModelFileError, match=r"format version .*reads versions 1 to 2"):
        skae.load(path)


# Headers that JSON parsers could read differently, or not at all


def test_duplicate_keys_in_the_header_are_refused(tmp_path, saved):
    # Which of two entries a parser keeps is up to the parser: skae's JSON and
    # safetensors' Rust could then hash one tensor table and load another.
    data = saved[0]
    (size,) = struct.unpack("<Q", data[:8])
    text = data[8 : 8 + size].rstrip()
    entry = b'"encoder.linear.0.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'
    text = text[:-1] + b"," + entry + b"}"
    path = tmp_path / "m.skae"
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + size :])
    with pytest.raises(ModelFileError, match="no skae metadata"):
        skae.load(path)


def test_a_deeply_nested_header_is_refused(tmp_path):
    text = b'{"__metadata__":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path = tmp_path / "m.skae"
    path.write_bytes(struct.pack("<Q", len(text)) + text)
    with pytest.raises(ModelFileError, match="no skae metadata"):
        skae.load(path)


def test_a_dtype_that_torch_lacks_is_refused(tmp_path, saved):
    header, body = split(saved[0])
    # One byte per element, like uint8: safetensors knows it, this torch may not.
    header["rng_state"]["dtype"] = "F8_E8M0"
    path = tmp_path / "m.skae"
    path.write_bytes(join(header, body))
    resign(path)
    with pytest.raises(ModelFileError, match="not a valid skae model file"):
        skae.load(path)


# Allocation: a load never allocates more than the file's size implies


def traced_peak(function, *args):
    """Return (result or the ModelFileError raised, peak bytes newly allocated)."""
    tracemalloc.start()
    try:
        try:
            result = function(*args)
        except ModelFileError as error:
            result = error
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def huge_architecture(metadata, header):
    architecture = metadata["fitted"]["architecture"]
    architecture["n_features"] = 10**6
    architecture["hidden_layer_sizes"] = [10**6]


def huge_shape(metadata, header):
    header["rng_state"]["shape"] = [10**12]


@pytest.mark.parametrize("claim", [huge_architecture, huge_shape])
def test_huge_claims_are_refused_before_allocating(tmp_path, saved, claim):
    header, body = split(saved[0])
    metadata = json.loads(header["__metadata__"]["skae"])
    claim(metadata, header)
    header["__metadata__"]["skae"] = json.dumps(metadata)
    path = tmp_path / "m.skae"
    path.write_bytes(join(header, body))
    resign(path)  # so that the checks after the digest's are the ones tried
    outcome, peak = traced_peak(load_quietly, path)
    assert isinstance(outcome, ModelFileError)
    assert peak < 2 * path.stat().st_size + 2**18


def test_a_huge_header_length_is_refused_before_allocating(tmp_path, saved):
    path = tmp_path / "m.skae"
    path.write_bytes(struct.pack("<Q", 2**62) + saved[0][8:])
    outcome, peak = traced_peak(load_quietly, path)
    assert "header claims" in str(outcome)
    assert peak < 2 * path.stat().st_size + 2**18


# The fuzz: every damaged copy is refused or loads as the very same model

COPIES = 150  # of each kind, for each way of hashing
DTYPES = ["F16", "BF16", "F64", "I32", "U32", "I64", "U8", "BOOL", "F8_E8M0", "X"]
STRINGS = ["relu", "tanh", "identity", "logistic", "gelu", "pca", "random", "sgd"]


def mutate_bytes(data, rng, start, stop):
    damaged = bytearray(data)
    count = min(stop - start, rng.integers(1, 5))
    for position in start + rng.choice(stop - start, size=count, replace=False):
        damaged[position] = (damaged[position] + rng.integers(1, 256)) % 256
    return bytes(damaged)


def leaves(node, found):
    """Collect (container, key) of every leaf of a JSON document."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        if isinstance(value, dict | list) and value:
            leaves(value, found)
        else:
            found.append((node, key))
    return found


def edit_leaf(value, rng):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + int(rng.choice([-1, 1, 7]))
    if isinstance(value, float):
        return float(rng.choice([value * 2, value + 1e-7, -value]))
    if isinstance(value, str):
        return str(rng.choice(STRINGS))
    return int(rng.integers(3))


def edit_header(header, rng):
    """Return a copy of `header` with one field changed, as a hex editor would."""
    header = copy.deepcopy(header)
    names = sorted(set(header) - {"__metadata__"})
    name = names[rng.integers(len(names))]
    entry = header[name]
    metadata = json.loads(header["__metadata__"]["skae"])
    kind = rng.integers(8)
    if kind == 0:
        entry["dtype"] = str(rng.choice(DTYPES))
    elif kind == 1 and entry["shape"]:
        axis = rng.integers(len(entry["shape"]))
        entry["shape"][axis] = max(0, entry["shape"][axis] + int(rng.choice([-1, 1])))
    elif kind == 1:
        entry["shape"] = [1]
    elif kind == 2:
        shift = int(rng.choice([-8, -4, 4, 8]))
        entry["data_offsets"] = [max(0, end + shift) for end in entry["data_offsets"]]
    elif kind == 3:
        del header[name]
    elif kind == 4:
        header[name.replace("weight", "bias").replace("exp_avg", "step") + "_"] = (
            header.pop(name)
        )
    elif kind == 5:
        container, key = (found := leaves(metadata, []))[rng.integers(len(found))]
        container[key] = edit_leaf(container[key], rng)
    elif kind == 6:
        metadata["format_version"] = [1, 3, "2", 2.0][rng.integers(4)]
    elif kind == 7:
        digest = header["__metadata__"]["skae_digest"]
        position = 7 + rng.integers(64)
        digit = "0123456789abcdef"[rng.integers(16)]
        header["__metadata__"]["skae_digest"] = (
            digest[:position] + digit + digest[position + 1 :]
        )
    header["__metadata__"]["skae"] = json.dumps(metadata, allow_nan=True)
    return header


def swap_offsets(header, rng):
    """Swap the data of two tensors of the same size (most of the same shape)."""
    header = copy.deepcopy(header)
    sizes = {}
    for name, entry in header.items():
        if name != "__metadata__":
            start, stop = entry["data_offsets"]
            sizes.setdefault(stop - start, []).append(name)
    groups = [names for names in sizes.values() if len(names) > 1]
    group = groups[rng.integers(len(groups))]
    first, second = rng.choice(group, size=2, replace=False)
    header[first]["data_offsets"], header[second]["data_offsets"] = (
        header[second]["data_offsets"],
        header[first]["data_offsets"],
    )
    return header


def mutated_copies(data, rng, count):
    """Yield (kind, bytes): `count` damaged copies of `data` of each kind."""
    header, body = split(data)
    start = len(data) - len(body)
    for _ in range(count):
        yield "bytes anywhere", mutate_bytes(data, rng, 0, len(data))
        yield "bytes in the header", mutate_bytes(data, rng, 8, start)
        yield "bytes in the tensors", mutate_bytes(data, rng, start, len(data))
        yield "truncation", data[: rng.integers(len(data))]
        size = start - 8
        wrong = [
            int(rng.integers(2**63)),
            size + int(rng.integers(1, 64)) * int(rng.choice([-1, 1])),
            len(data) - 8,
            int(rng.integers(size)),
        ][rng.integers(4)]
        yield "header length", struct.pack("<Q", wrong) + data[8:]
        yield "edited header field", join(edit_header(header, rng), body)
        yield "swapped offsets", join(swap_offsets(header, rng), body)


@pytest.mark.parametrize("hashed", ["before parsing", "while parsing"])
def test_fuzz_damaged_files_are_refused_or_load_the_same_model(
    tmp_path, saved, monkeypatch, hashed
):
    if hashed == "while parsing":  # as files of 1 MiB of tensors and more are
        monkeypatch.setattr(skae._persistence, "_HASH_WHILE_PARSING", 0)
    data, codes, reconstructions = saved
    X = small_data()
    path = tmp_path / "mutated.skae"
    outcomes = Counter()
    peak = 0
    rng = np.random.default_rng(0)
    tracemalloc.start()
    try:
        for index, (kind, mutated) in enumerate(mutated_copies(data, rng, COPIES)):
            if mutated == data:
                continue
            path.write_bytes(mutated)
            tracemalloc.reset_peak()
            baseline = tracemalloc.get_traced_memory()[0]
            try:
                model = load_quietly(path)
            except ModelFileError as error:
                reason = "damaged" if "is damaged" in str(error) else "invalid"
                outcomes[kind, f"refused ({reason})"] += 1
            except Exception as error:
                pytest.fail(f"copy {index} ({kind}): {type(error).__name__}: {error}")
            else:
                # Only JSON formatting changed (a space for a tab, say).
                assert split(mutated) == split(data), kind
                assert_array_equal(model.transform(X), codes, err_msg=kind)
                assert_array_equal(
                    model.inverse_transform(codes), reconstructions, err_msg=kind
                )
                outcomes[kind, "same model"] += 1
            peak = max(peak, tracemalloc.get_traced_memory()[1] - baseline)
    finally:
        tracemalloc.stop()
    print(f"\nfuzz, hashed {hashed}: outcomes of {sum(outcomes.values())} copies")
    for (kind, outcome), count in sorted(outcomes.items()):
        print(f"  {kind:20} {outcome:18} {count}")
    print(f"peak allocation of one load: {peak} bytes, file {len(data)} bytes")
    # Every change to the tensor data is noticed, by the digest.
    assert outcomes["bytes in the tensors", "refused (damaged)"] == COPIES
    assert outcomes["swapped offsets", "refused (damaged)"] == COPIES
    assert peak < 2 * len(data) + 2**18
