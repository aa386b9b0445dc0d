"""Safe model files: save/load round trips, refusals, atomic writes, checkpoints."""

import functools
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest
import safetensors.torch
import torch
from numpy.testing import assert_array_equal

import skae
from skae import ModelFileError
from skae._persistence import _atomic_write, _read_header, _with_digest
from skae.callbacks import Checkpoint

import _helpers
from _helpers import assert_resume_equals_a_fit_never_stopped

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# Trained one epoch longer than _helpers.tiny, as these tests always were.
tiny = functools.partial(_helpers.tiny, max_iter=4)


@pytest.fixture
def model_path(tmp_path, X_small):
    path = tmp_path / "model.skae"
    tiny().fit(X_small).save(path)
    return path


@pytest.fixture
def sentinel(tmp_path):
    """A path that a malicious payload would create, and must never exist."""
    return tmp_path / "PWNED"


class Payload:
    """Unpickling this runs os.system, which writes the sentinel file."""

    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


def read_header(path):
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def rewrite_metadata(path, change):
    """Load a file's tensors and metadata, let `change` edit them, write it back.

    The file gets a digest of what it then holds, as a file edited on purpose
    could: the checks after the digest's must refuse it.
    """
    header, _ = read_header(path)
    metadata = json.loads(header["__metadata__"]["skae"])
    tensors = safetensors.torch.load_file(path)
    change(metadata, tensors)
    data = safetensors.torch.save(tensors, metadata={"skae": json.dumps(metadata)})
    _atomic_write(path, *_with_digest(data, path))


# Round trips


# promise: saving.rst / Saving and loading safely
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"init": "random", "activation": "tanh"},
        {"hidden_layer_sizes": ()},
        {"solver": "sgd", "learning_rate": "cosine"},
        {"early_stopping": True},
        {"noise": {"gaussian": 0.1, "mask": 0.1}, "loss": "squared_error"},
    ],
)
def test_round_trip_gives_identical_outputs_and_training(tmp_path, X_small, params):
    ae = tiny(**params).fit(X_small)
    path = tmp_path / "m.skae"
    assert ae.save(path) is ae
    loaded = skae.load(path)
    assert loaded.get_params() == ae.get_params()
    assert_array_equal(loaded.transform(X_small), ae.transform(X_small))
    assert_array_equal(loaded.reconstruct(X_small), ae.reconstruct(X_small))
    assert loaded.loss_curve_ == ae.loss_curve_ and loaded.n_iter_ == ae.n_iter_
    # The optimizer state and random state travel too: training continues alike.
    for model in (ae, loaded):
        model.set_params(warm_start=True, max_iter=2).fit(X_small)
    assert_array_equal(loaded.transform(X_small), ae.transform(X_small))


def test_round_trip_keeps_feature_names(tmp_path, X_small):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_small, columns=[f"pixel{i}" for i in range(10)])
    ae = tiny().fit(frame)
    ae.save(tmp_path / "m.skae")
    loaded = skae.load(tmp_path / "m.skae")
    assert_array_equal(loaded.feature_names_in_, ae.feature_names_in_)
    with pytest.warns(UserWarning, match="feature names"):
        loaded.transform(X_small)


def test_unfitted_model_round_trip(tmp_path):
    tiny(n_components=3).save(tmp_path / "m.skae")
    loaded = skae.load(tmp_path / "m.skae")
    assert loaded.n_components == 3 and not hasattr(loaded, "encoder_")


def test_unsaveable_parameters_are_named_in_a_warning(tmp_path, X_small):
    ae = tiny(callbacks=[print], random_state=np.random.RandomState(0)).fit(X_small)
    with pytest.warns(UserWarning, match="callbacks, random_state"):
        ae.save(tmp_path / "m.skae")
    loaded = skae.load(tmp_path / "m.skae")
    assert loaded.callbacks is None and loaded.random_state is None
    assert_array_equal(loaded.transform(X_small), ae.transform(X_small))


def test_saving_over_a_directory_is_refused(tmp_path, X_small):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        tiny().fit(X_small).save(tmp_path)


# Refusals: nothing in a file may run code


# promise: saving.rst / What ``load`` checks
def test_refuses_a_pickle_with_a_payload(tmp_path, sentinel):
    path = tmp_path / "evil.skae"
    path.write_bytes(pickle.dumps(Payload(sentinel)))
    with pytest.raises(ModelFileError, match="is a pickle"):
        skae.load(path)
    assert not sentinel.exists()


def test_refuses_a_pickled_model(tmp_path, X_small, sentinel):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps([tiny().fit(X_small), Payload(sentinel)]))
    with pytest.raises(ModelFileError, match="never unpickles"):
        skae.load(path)
    assert not sentinel.exists()


def test_refuses_a_torch_save_of_a_module(tmp_path, X_small, sentinel):
    path = tmp_path / "module.pt"
    torch.save({"module": tiny().fit(X_small).encoder_, "x": Payload(sentinel)}, path)
    assert not sentinel.exists()
    with pytest.raises(ModelFileError, match="zip archive"):
        skae.load(path)
    assert not sentinel.exists()


def test_refuses_a_zip_with_an_injected_pickle(tmp_path, sentinel):
    path = tmp_path / "injected.skae"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(Payload(sentinel)))
        archive.writestr("metadata.json", json.dumps({"class": "MLPAutoencoder"}))
    with pytest.raises(ModelFileError, match="zip archive"):
        skae.load(path)
    assert not sentinel.exists()


def test_refuses_a_pickle_behind_a_fake_header(tmp_path, sentinel):
    # A valid length prefix, then a pickle where the JSON header should be.
    payload = pickle.dumps(Payload(sentinel))
    path = tmp_path / "fake.skae"
    path.write_bytes(struct.pack("<Q", len(payload)) + payload)
    with pytest.raises(ModelFileError, match="no skae metadata"):
        skae.load(path)
    assert not sentinel.exists()


def test_refuses_an_unknown_class(model_path):
    rewrite_metadata(model_path, lambda meta, _: meta.update({"class": "os.system"}))
    with pytest.raises(ModelFileError, match=r"names the class 'os.system'"):
        skae.load(model_path)


def test_refuses_a_plain_safetensors_file(tmp_path):
    path = tmp_path / "weights.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(3)}, path)
    with pytest.raises(ModelFileError, match="no skae metadata"):
        skae.load(path)


# promise: saving.rst / What ``load`` checks
# promise: saving.rst / File format
def test_refuses_a_newer_format_version(model_path):
    rewrite_metadata(model_path, lambda meta, _: meta.update({"format_version": 99}))
    with pytest.raises(ModelFileError, match="format version 99"):
        skae.load(model_path)


def test_refuses_a_tensor_of_the_wrong_shape(model_path):
    def widen(_, tensors):
        tensors["encoder.linear.0.weight"] = torch.zeros(3, 10)

    rewrite_metadata(model_path, widen)
    with pytest.raises(ModelFileError, match=r"weights but the file holds"):
        skae.load(model_path)


def test_refuses_swapped_shapes_with_the_same_size(model_path):
    def transpose(_, tensors):
        name = "encoder.correction.0.weight"
        tensors[name] = tensors[name].T.contiguous()

    rewrite_metadata(model_path, transpose)
    with pytest.raises(ModelFileError, match=r"encoder.correction.0.weight .* shape"):
        skae.load(model_path)


def test_refuses_a_tensor_of_the_wrong_dtype(model_path):
    def to_double(_, tensors):
        tensors["decoder.linear.0.bias"] = tensors["decoder.linear.0.bias"].double()

    rewrite_metadata(model_path, to_double)
    with pytest.raises(ModelFileError, match=r"torch.float64"):
        skae.load(model_path)


def test_refuses_a_missing_tensor(model_path):
    rewrite_metadata(model_path, lambda _, tensors: tensors.pop("rng_state"))
    with pytest.raises(ModelFileError, match="rng_state is missing"):
        skae.load(model_path)


def test_refuses_invalid_parameters(model_path):
    def bad(meta, _):
        meta["params"]["activation"] = "__import__('os')"

    rewrite_metadata(model_path, bad)
    with pytest.raises(ModelFileError, match=r"invalid parameters.*activation"):
        skae.load(model_path)


def test_refuses_an_optimizer_state_of_the_wrong_shape(model_path):
    def bad(_, tensors):
        tensors["optimizer.0.exp_avg"] = torch.zeros(1)

    rewrite_metadata(model_path, bad)
    with pytest.raises(ModelFileError, match=r"optimizer.0.exp_avg"):
        skae.load(model_path)


@pytest.mark.parametrize("keep", [0, 5, 100, -100, -1])
def test_refuses_truncated_files(model_path, keep):
    data = model_path.read_bytes()
    model_path.write_bytes(data[:keep])
    with pytest.raises(ModelFileError, match=r"truncated|not a valid|no skae metadata"):
        skae.load(model_path)


# Atomic writes


def test_a_crash_mid_write_leaves_the_previous_file_loadable(
    tmp_path, X_small, model_path, monkeypatch
):
    before = model_path.read_bytes()

    def crash(*args):
        raise OSError("disk unplugged")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk unplugged"):
        tiny(n_components=3).fit(X_small).save(model_path)
    assert model_path.read_bytes() == before
    assert skae.load(model_path).n_components == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.skae"]


def test_an_interrupted_write_cleans_up(tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _atomic_write(tmp_path / "m.skae", b"data")
    assert list(tmp_path.iterdir()) == []


# Checkpoints and resume


# promise: saving.rst / Checkpoints
@pytest.mark.parametrize(
    "params",
    [
        {},  # the defaults: PCA start and a one-cycle schedule over the whole fit
        {"early_stopping": True, "n_iter_no_change": 50},
        {"noise": 0.1, "learning_rate": "cosine", "solver": "sgd", "init": "random"},
    ],
)
def test_five_plus_five_epochs_equal_ten_bit_for_bit(tmp_path, X_small, params):
    straight = tiny(max_iter=10, **params).fit(X_small)
    checkpoint = Checkpoint(tmp_path / "ckpt-{epoch}.skae", every=5)
    tiny(max_iter=10, callbacks=[checkpoint], **params).fit(X_small)
    assert [p.name for p in checkpoint.saved_] == ["ckpt-5.skae", "ckpt-10.skae"]
    resumed = skae.load(tmp_path / "ckpt-5.skae")
    assert resumed.n_iter_ == 5
    resumed.resume(X_small)
    assert resumed.n_iter_ == 10
    assert resumed.loss_curve_ == straight.loss_curve_
    assert_array_equal(resumed.transform(X_small), straight.transform(X_small))
    # The last checkpoint is still a fit in progress (early stopping has yet to
    # restore its best epoch): resume finishes it without further epochs.
    last = skae.load(tmp_path / "ckpt-10.skae").resume(X_small)
    assert last.n_iter_ == 10
    assert_array_equal(last.transform(X_small), straight.transform(X_small))


# promise: failures.rst / Ctrl-C and ``resume``
def test_resume_after_ctrl_c_equals_an_uninterrupted_fit(X_small):
    assert_resume_equals_a_fit_never_stopped(tiny, X_small, max_iter=6, stop_after=2)


def test_resume_refuses_a_finished_fit(X_small):
    ae = tiny().fit(X_small)
    with pytest.raises(ValueError, match="Nothing to resume"):
        ae.resume(X_small)


def test_checkpoint_refuses_a_bad_interval():
    with pytest.raises(ValueError, match="every=0"):
        Checkpoint("x.skae", every=0)


@pytest.mark.parametrize("header_size", [0x280, 0x380, 0x480, 0x580])
def test_a_header_length_that_looks_like_a_pickle_is_read(tmp_path, header_size):
    # 0x380 is written 80 03 00 ..., the first bytes of a pickle of protocol 3.
    header = b'{"__metadata__":{"skae":"{}"}}'
    data = struct.pack("<Q", header_size) + header.ljust(header_size)
    parsed, start = _read_header(data, tmp_path / "m.skae")
    assert parsed["__metadata__"] == {"skae": "{}"} and start == 8 + header_size
