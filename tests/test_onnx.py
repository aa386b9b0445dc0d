import functools
import os

import numpy as np
import pytest
import scipy.sparse
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skae import MLPAutoencoder
from skae._modules import ACTIVATIONS
from skae._presets import CHAPTER_PARAMS

import _helpers

onnxruntime = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
skl2onnx = pytest.importorskip("skl2onnx")
skae_onnx = pytest.importorskip("skae.onnx")

# Parity with the estimator's float32 arithmetic, whatever kernels either uses.
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}

# Rank-3 data, so 3 components; two hidden layers to export; early stopping "auto".
tiny = functools.partial(
    _helpers.tiny,
    n_components=3,
    hidden_layer_sizes=(6, 5),
    max_iter=2,
    early_stopping="auto",
)


def run(model, X):
    """Serve `model` with onnxruntime; return all its outputs for X."""
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: X})


def small_data(n_samples=1000, n_features=8, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n_samples, 3) @ rng.rand(3, n_features) + 0.1 * rng.rand(
        n_samples, n_features
    )
    return X.astype(np.float32)


def assert_parts_match(ae, X, batch_sizes=(1000, 7)):
    """Every part, exported from one row, matches its method on other batches."""
    codes = ae.transform(X)
    for part, method, inputs in [
        ("encoder", ae.transform, X),
        ("decoder", ae.inverse_transform, codes),
        ("autoencoder", ae.reconstruct, X),
    ]:
        model = skae_onnx.to_onnx(ae, inputs[:1], part=part)
        for n_samples in batch_sizes:
            (output,) = run(model, inputs[:n_samples])
            expected = method(inputs[:n_samples])
            assert output.dtype == expected.dtype
            assert_allclose(output, expected, **TOLERANCE)


def test_pipeline_with_scaler_matches_transform():
    X = small_data()
    pipeline = make_pipeline(MinMaxScaler(), tiny()).fit(X)
    model = skl2onnx.to_onnx(pipeline, X[:1])
    for n_samples in (1000, 7):
        (codes,) = run(model, X[:n_samples])
        assert_allclose(codes, pipeline.transform(X[:n_samples]), **TOLERANCE)


# promise: onnx.rst / How do I deploy it?
def test_pipeline_with_classifier_matches_predict_and_predict_proba():
    X = small_data()
    y = (X[:, 0] > np.median(X[:, 0])).astype(np.int64)
    pipeline = make_pipeline(StandardScaler(), tiny(), LogisticRegression()).fit(X, y)
    model = skl2onnx.to_onnx(
        pipeline, X[:1], options={LogisticRegression: {"zipmap": False}}
    )
    for n_samples in (1000, 7):
        labels, probabilities = run(model, X[:n_samples])
        expected = pipeline.predict_proba(X[:n_samples])
        assert_allclose(probabilities, expected, **TOLERANCE)
        # A label may flip only where the probability is within rounding of 0.5.
        clear = np.abs(expected[:, 1] - 0.5) > 1e-4
        assert_array_equal(labels[clear], pipeline.predict(X[:n_samples])[clear])


def test_chapter_preset_matches_every_method():
    X = np.random.RandomState(0).rand(1000, 784).astype(np.float32)
    ae = MLPAutoencoder(**{**CHAPTER_PARAMS, "max_iter": 1, "random_state": 0})
    assert_parts_match(ae.fit(X), X)


# promise: onnx.rst / How do I deploy it?
def test_default_parameters_match_every_method():
    # Defaults: hidden_layer_sizes="auto", GELU, started from PCA.
    X = small_data()
    assert_parts_match(MLPAutoencoder(max_iter=1, random_state=0).fit(X), X)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_matches(activation):
    X = small_data()
    ae = tiny(
        activation=activation,
        latent_activation=activation,
        output_activation=activation,
        init="random",
    )
    assert_parts_match(ae.fit(X), X)


@pytest.mark.parametrize("init", ["pca", "random"])
@pytest.mark.parametrize("hidden_layer_sizes", [(), (6, 5)])
def test_pca_and_random_starts_match(init, hidden_layer_sizes):
    X = small_data()
    ae = tiny(init=init, hidden_layer_sizes=hidden_layer_sizes, max_iter=3)
    assert_parts_match(ae.fit(X), X)


def test_pca_start_with_a_nonzero_residual_matches():
    # A few epochs leave the residual MLP's last layer near zero, where a graph
    # without it would pass too: give it weights of a size training could reach.
    X = small_data()
    ae = tiny(init="pca").fit(X)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in (ae.encoder_, ae.decoder_):
            for parameter in module.correction[-1].parameters():
                parameter.normal_(0, 0.5, generator=generator)
        linear_only = ae.encoder_.linear(torch.from_numpy(X)).numpy()
    assert not np.allclose(ae.transform(X), linear_only, rtol=0, atol=1e-2)
    assert_parts_match(ae, X)


def test_float64_input_gives_float64_output():
    X = small_data().astype(np.float64)
    ae = tiny().fit(X)
    assert_parts_match(ae, X)
    pipeline = make_pipeline(StandardScaler(), ae).fit(X)
    (codes,) = run(skl2onnx.to_onnx(pipeline, X[:1]), X)
    assert codes.dtype == np.float64
    assert_allclose(codes, pipeline.transform(X), **TOLERANCE)


def test_decoder_option_in_skl2onnx():
    X = small_data()
    ae = tiny().fit(X)
    codes = ae.transform(X)
    model = skl2onnx.to_onnx(ae, codes[:1], options={id(ae): {"part": "decoder"}})
    (reconstructed,) = run(model, codes)
    assert_allclose(reconstructed, ae.inverse_transform(codes), **TOLERANCE)


def test_dataframe_columns_are_concatenated():
    pandas = pytest.importorskip("pandas")
    X = pandas.DataFrame(small_data(), columns=[f"x{i}" for i in range(8)])
    ae = tiny().fit(X)
    session = onnxruntime.InferenceSession(
        skl2onnx.to_onnx(ae, X[:1]).SerializeToString(),
        providers=["CPUExecutionProvider"],
    )
    (codes,) = session.run(None, {name: X[[name]].to_numpy() for name in X.columns})
    assert_allclose(codes, ae.transform(X), **TOLERANCE)


# promise: onnx.rst / The autoencoder alone
def test_to_onnx_names_inputs_outputs_and_part():
    ae = tiny().fit(small_data())
    model = skae_onnx.to_onnx(ae, part="autoencoder")
    assert [node.name for node in model.graph.input] == ["X"]
    assert [node.name for node in model.graph.output] == ["X_reconstructed"]
    properties = {prop.key: prop.value for prop in model.metadata_props}
    assert properties["part"] == "autoencoder"
    assert properties["method"] == "reconstruct"


def test_to_onnx_writes_the_file_atomically(tmp_path):
    X = small_data()
    ae = tiny().fit(X)
    path = tmp_path / "encoder.onnx"
    path.write_bytes(b"an older file")
    model = skae_onnx.to_onnx(ae, path=str(path))
    assert path.read_bytes() == model.SerializeToString()
    assert os.listdir(tmp_path) == ["encoder.onnx"]
    (codes,) = run(onnx.load(path), X)
    assert_allclose(codes, ae.transform(X), **TOLERANCE)


def test_to_onnx_leaves_the_old_file_when_it_fails(tmp_path):
    path = tmp_path / "encoder.onnx"
    path.write_bytes(b"an older file")
    ae = tiny().fit(small_data())
    with pytest.raises(ValueError, match="part='coder' is not one of"):
        skae_onnx.to_onnx(ae, part="coder", path=path)
    assert path.read_bytes() == b"an older file"


def test_unfitted_estimator_is_refused():
    X = small_data()
    with pytest.raises(NotFittedError):
        skae_onnx.to_onnx(MLPAutoencoder())
    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(make_pipeline(MLPAutoencoder()), X[:1])


def test_unknown_part_is_refused():
    ae = tiny().fit(small_data())
    with pytest.raises(ValueError, match=r"part='coder' is not one of \['autoenc"):
        skae_onnx.to_onnx(ae, part="coder")


def test_unknown_converter_options_are_refused():
    X = small_data()
    ae = tiny().fit(X)
    with pytest.raises(ValueError, match=r"Option 'parts' not in \['part'\]"):
        skl2onnx.to_onnx(ae, X[:1], options={MLPAutoencoder: {"parts": "decoder"}})
    with pytest.raises(ValueError, match=r"Unexpected value \['coder'\]"):
        skl2onnx.to_onnx(ae, X[:1], options={MLPAutoencoder: {"part": "coder"}})


def test_wrong_inputs_are_refused():
    X = small_data()
    ae = tiny().fit(X)
    with pytest.raises(TypeError, match=r"dtype int64.*float32 or float64"):
        skae_onnx.to_onnx(ae, X[:1].astype(np.int64))
    with pytest.raises(TypeError, match="sparse matrix"):
        skae_onnx.to_onnx(ae, scipy.sparse.csr_matrix(X[:1]))
    with pytest.raises(ValueError, match=r"shape \(1, 8\), but part='decoder'"):
        skae_onnx.to_onnx(ae, X[:1], part="decoder")
    with pytest.raises(TypeError, match="of one dtype, got Int64TensorType"):
        skl2onnx.to_onnx(ae, X[:1].astype(np.int64))
    with pytest.raises(ValueError, match=r"input has 4 columns.*takes 8"):
        skl2onnx.to_onnx(ae, X[:1, :4])
    with pytest.raises(TypeError, match="not an MLPAutoencoder"):
        skae_onnx.to_onnx(make_pipeline(ae))


class _NanTolerantAutoencoder(MLPAutoencoder):
    """Stands for a future model whose own transform treats missing values."""

    def transform(self, X):
        return super().transform(X)


def test_missing_value_support_of_other_models_is_refused():
    X = small_data()
    ae = _NanTolerantAutoencoder(3, hidden_layer_sizes=(4,), max_iter=1).fit(X)
    with pytest.raises(NotImplementedError, match="missing values"):
        skae_onnx.to_onnx(ae)


# promise: onnx.rst / What the graph computes
def test_the_graph_takes_complete_rows_and_gives_nan_for_missing_entries():
    X = small_data().astype(np.float32)
    ae = tiny().fit(X)
    X_holed = X[:4].copy()
    X_holed[0, 1] = np.nan
    (codes,) = run(skae_onnx.to_onnx(ae), X_holed)
    assert np.isnan(codes[0]).all()
    np.testing.assert_allclose(codes[1:], ae.transform(X_holed[1:]), atol=1e-5)


def test_estimator_method_delegates_to_to_onnx(tmp_path):
    X = small_data()
    ae = tiny().fit(X)
    path = tmp_path / "decoder.onnx"
    model = ae.to_onnx(path, part="decoder")
    assert path.read_bytes() == model.SerializeToString()
    codes = ae.transform(X)
    (reconstructed,) = run(model, codes)
    assert_allclose(reconstructed, ae.inverse_transform(codes), **TOLERANCE)
