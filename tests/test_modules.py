"""The torch side alone: tensors in, tensors out, no scikit-learn."""

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import skae
from skae._modules import (
    build_autoencoder,
    build_mlp,
    pca_basis,
    split_last_activation,
)
from skae._torch_utils import make_generator
from skae._training import apply_in_batches, make_optimizer, train_epochs

TORCH_ONLY = ("_modules", "_training", "_torch_utils", "_missing", "_sparse")


@pytest.mark.parametrize("name", TORCH_ONLY)
def test_torch_modules_never_import_scikit_learn(name):
    source = Path(skae.__file__).with_name(f"{name}.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert "torch" in imported
    assert not any(module.startswith("sklearn") for module in imported)
    skae_modules = {m.split(".")[1] for m in imported if m.startswith("skae.")}
    assert skae_modules <= set(TORCH_ONLY)


def test_build_mlp_layers_and_activations():
    mlp = build_mlp([6, 4, 2], "tanh", "identity")
    assert [type(m) for m in mlp] == [nn.Linear, nn.Tanh, nn.Linear]
    mlp = build_mlp([6, 4, 2], "relu", "logistic")
    assert [type(m) for m in mlp] == [nn.Linear, nn.ReLU, nn.Linear, nn.Sigmoid]


def test_autoencoder_is_mirrored():
    encoder, decoder = build_autoencoder(10, (8, 4), 2)
    assert [m.out_features for m in encoder if isinstance(m, nn.Linear)] == [8, 4, 2]
    assert [m.out_features for m in decoder if isinstance(m, nn.Linear)] == [4, 8, 10]


def test_initialisation_matches_torch_default_under_the_same_seed():
    generator = torch.Generator().manual_seed(5)
    ours = build_mlp([7, 3], "identity", "identity", generator)[0]
    torch.manual_seed(5)
    reference = nn.Linear(7, 3)
    torch.testing.assert_close(ours.weight, reference.weight)
    torch.testing.assert_close(ours.bias, reference.bias)
    assert ours.weight.abs().max() <= 1 / math.sqrt(7)


def test_split_last_activation():
    body, last = split_last_activation(build_mlp([4, 2], "relu", "logistic"))
    assert isinstance(last, nn.Sigmoid) and len(body) == 1
    body, last = split_last_activation(build_mlp([4, 2], "relu", "identity"))
    assert last is None and len(body) == 1


def test_train_epochs_records_and_stops_on_request():
    generator = make_generator(0)
    encoder, decoder = build_autoencoder(5, (4,), 2, generator=generator)
    X = torch.rand(64, 5, generator=generator)
    optimizer = make_optimizer(
        [*encoder.parameters(), *decoder.parameters()], "adam", 0.01
    )
    seen = []
    records = train_epochs(
        encoder,
        decoder,
        X,
        optimizer=optimizer,
        n_epochs=10,
        batch_size=16,
        generator=generator,
        on_epoch_end=lambda record: seen.append(record) or record.epoch == 2,
    )
    assert [r.epoch for r in records] == [0, 1, 2]
    assert seen == records
    assert all(r.train_loss > 0 and r.seconds >= 0 for r in records)
    assert not encoder.training


def test_train_epochs_loss_is_the_sample_weighted_mean():
    encoder, decoder = build_autoencoder(3, (), 1, generator=make_generator(0))
    optimizer = make_optimizer(
        [*encoder.parameters(), *decoder.parameters()], "sgd", 1e-12, momentum=0
    )
    X = torch.rand(10, 3)
    (record,) = train_epochs(
        encoder,
        decoder,
        X,
        optimizer=optimizer,
        n_epochs=1,
        batch_size=4,
        shuffle=False,
    )
    with torch.no_grad():
        expected = 0.5 * ((decoder(encoder(X)) - X) ** 2).mean()
    assert record.train_loss == pytest.approx(float(expected), rel=1e-5)


def test_apply_in_batches_matches_one_pass(monkeypatch):
    import numpy as np

    from skae import _training

    monkeypatch.setattr(_training, "INFERENCE_BATCH_SIZE", 7)
    module = build_mlp([4, 3], "relu", "identity", make_generator(0))
    X = np.random.RandomState(0).rand(30, 4)
    out = apply_in_batches(module, X)
    assert out.dtype == np.float64
    with torch.no_grad():
        expected = module(torch.from_numpy(X).float()).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "layout", ["float32", "float32 read-only", "float32 Fortran", "float32 strided"]
)
def test_apply_in_batches_gives_the_same_for_every_memory_layout(monkeypatch, layout):
    # Writeable float32 in C order is used in place; every other layout is copied.
    # Either way the result is the same and the caller's array is left as it was.
    import numpy as np

    from skae import _training

    monkeypatch.setattr(_training, "INFERENCE_BATCH_SIZE", 7)
    module = build_mlp([4, 5, 3], "relu", "identity", make_generator(0))
    base = np.random.RandomState(0).rand(30, 8).astype(np.float32)
    X = np.ascontiguousarray(base[:, :4])
    if layout == "float32 read-only":
        X.flags.writeable = False
    elif layout == "float32 Fortran":
        X = np.asfortranarray(X)
    elif layout == "float32 strided":
        X = base[:, ::2]
    before = X.copy()
    out = apply_in_batches(module, X)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    with torch.no_grad():
        expected = module(torch.from_numpy(np.array(X, order="C"))).numpy()
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(X, before)


def test_unknown_solver_is_refused():
    with pytest.raises(ValueError, match="solver='lbfgs'"):
        make_optimizer([nn.Parameter(torch.zeros(1))], "lbfgs", 0.1)


def test_pca_basis_matches_scikit_learn():
    from sklearn.decomposition import PCA

    X = torch.rand(300, 12, generator=torch.Generator().manual_seed(0)) ** 3
    components, mean = pca_basis(X, 4)
    reference = PCA(n_components=4).fit(X.numpy())
    np.testing.assert_allclose(components.numpy(), reference.components_, atol=1e-5)
    np.testing.assert_allclose(mean.numpy(), reference.mean_, atol=1e-6)


def test_pca_basis_with_fewer_samples_than_features():
    X = torch.rand(5, 12, generator=torch.Generator().manual_seed(0))
    components, _ = pca_basis(X, 8)
    assert components.shape == (5, 12)
    torch.testing.assert_close(
        components @ components.T, torch.eye(5), atol=1e-5, rtol=0
    )


def test_pca_basis_honours_sample_weights():
    X = torch.rand(60, 6, generator=torch.Generator().manual_seed(1)) ** 2
    weights = torch.arange(60) % 3
    weighted = pca_basis(X, 3, weights.float())
    repeated = pca_basis(X.repeat_interleave(weights, dim=0), 3)
    for a, b in zip(weighted, repeated, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_pca_start_reconstructs_as_pca():
    X = torch.rand(200, 12, generator=torch.Generator().manual_seed(2)) ** 2
    pca = pca_basis(X, 3)
    encoder, decoder = build_autoencoder(
        12, (16, 8), 5, generator=make_generator(0), pca=pca
    )
    components, mean = pca
    expected_code = (X - mean) @ components.T
    with torch.no_grad():
        code = encoder(X)
        torch.testing.assert_close(code[:, :3], expected_code, atol=1e-5, rtol=1e-4)
        # Units beyond the PCA axes have no effect on the reconstruction yet.
        expected = expected_code @ components + mean
        torch.testing.assert_close(decoder(code), expected, atol=1e-5, rtol=1e-4)


def test_pca_start_refuses_non_identity_outputs():
    pca = pca_basis(torch.rand(20, 4), 2)
    with pytest.raises(ValueError, match="identity latent and output"):
        build_autoencoder(4, (3,), 2, output_activation="logistic", pca=pca)
