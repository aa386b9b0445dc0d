"""The torch side alone: tensors in, tensors out, no scikit-learn."""

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import skae
from skae import _training
from skae._modules import (
    build_autoencoder,
    build_mlp,
    pca_basis,
    split_last_activation,
)
from skae._torch_utils import make_generator
from skae._training import apply_in_batches, make_optimizer, train_epochs

TORCH_ONLY = (
    "_modules",
    "_training",
    "_torch_utils",
    "_missing",
    "_sparse",
    "_distributed",
)


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
    assert all(r.train_loss > 0 for r in records)
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


def _row_at_every_place(module, X, row):
    """Return module's output for X[row] placed at every row index of X."""
    outputs = []
    for place in range(X.shape[0]):
        moved = X.copy()
        moved[[row, place]] = moved[[place, row]]
        outputs.append(apply_in_batches(module, moved)[place])
    return np.array(outputs)


@pytest.mark.parametrize("sizes", [[4, 3], [64, 512, 5], [784, 512, 256, 30]])
def test_apply_in_batches_gives_a_row_the_same_bits_at_every_place_in_a_chunk(sizes):
    # The property the fixed-shape chunks are built for: a row's result does not
    # depend on where in its chunk it sits, with any kernel MKL picks.
    module = build_mlp(sizes, "gelu", "identity", make_generator(0))
    X = np.random.RandomState(0).rand(_training.INFERENCE_CHUNK_ROWS, sizes[0])
    X = X.astype(np.float32)
    expected = apply_in_batches(module, X[:1])[0]
    outputs = _row_at_every_place(module, X, row=0)
    np.testing.assert_array_equal(outputs, np.broadcast_to(expected, outputs.shape))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_apply_in_batches_is_invariant_to_the_rows_around_and_their_number(
    monkeypatch, dtype
):
    module = build_mlp([12, 32, 3], "gelu", "identity", make_generator(0))
    X = np.random.RandomState(0).rand(1000, 12).astype(dtype)
    together = apply_in_batches(module, X)
    assert together.dtype == dtype
    alone = np.vstack([apply_in_batches(module, X[i : i + 1]) for i in range(20)])
    reversed_order = apply_in_batches(module, X[::-1])[::-1]
    shuffled = np.random.RandomState(1).permutation(1000)
    monkeypatch.setattr(_training, "INFERENCE_BATCH_SIZE", 7)
    small_batches = apply_in_batches(module, X)
    np.testing.assert_array_equal(alone, together[:20])
    np.testing.assert_array_equal(reversed_order, together)
    np.testing.assert_array_equal(
        apply_in_batches(module, X[shuffled]), together[shuffled]
    )
    np.testing.assert_array_equal(small_batches, together)
    # And it is the module's own answer, at float32's precision.
    with torch.no_grad():
        expected = module(torch.from_numpy(X).float()).numpy()
    np.testing.assert_allclose(together, expected, rtol=1e-5, atol=1e-6)


def test_wide_rows_go_in_smaller_chunks_of_a_fixed_shape():
    import scipy.sparse

    assert _training.chunk_rows(784) == _training.INFERENCE_CHUNK_ROWS
    assert _training.chunk_rows(20_000) == 192
    assert _training.chunk_rows(2**20) == 48
    module = build_mlp([20_000, 3], "relu", "identity", make_generator(0))
    X = scipy.sparse.random(400, 20_000, density=0.001, format="csr", random_state=0)
    together = apply_in_batches(module, X)
    alone = np.vstack([apply_in_batches(module, X[i : i + 1]) for i in range(5)])
    np.testing.assert_array_equal(alone, together[:5])
    np.testing.assert_array_equal(apply_in_batches(module, X[::-1])[::-1], together)


@pytest.mark.parametrize(
    "layout",
    ["float32", "float32 read-only", "float32 Fortran", "float32 strided", "sparse"],
)
def test_apply_in_batches_gives_the_same_for_every_memory_layout(layout):
    # Every layout is copied into the same chunk buffer, so the result is the
    # same bits, and the caller's array is left as it was.
    import scipy.sparse

    module = build_mlp([4, 5, 3], "relu", "identity", make_generator(0))
    base = np.random.RandomState(0).rand(30, 8).astype(np.float32)
    base[base < 0.3] = 0.0
    X = np.ascontiguousarray(base[:, :4])
    expected = apply_in_batches(module, X)
    if layout == "float32 read-only":
        X.flags.writeable = False
    elif layout == "float32 Fortran":
        X = np.asfortranarray(X)
    elif layout == "float32 strided":
        X = base[:, ::2]
        expected = apply_in_batches(module, np.ascontiguousarray(X))
    elif layout == "sparse":
        X = scipy.sparse.csr_matrix(X)
    before = X.copy()
    out = apply_in_batches(module, X)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)
    if layout == "sparse":
        np.testing.assert_array_equal(X.toarray(), before.toarray())
    else:
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
