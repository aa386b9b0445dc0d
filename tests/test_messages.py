"""Refusals a user meets: each names the problem and points to the fix.

Each test here failed before its message was written: the call gave a bare
error, pointed the wrong way, or did the wrong thing without a word.
"""

import json
import warnings

import numpy as np
import pytest
from sklearn.decomposition import PCA

import skae
from skae import AutoencoderImputer, MLPAutoencoder
from skae.metrics import compare, explained_variance, reconstruction_error


def complete_rows(n_samples=60, n_features=5):
    return np.random.RandomState(0).rand(n_samples, n_features)


def with_hole(X):
    X = X.copy()
    X[2, 2] = np.nan
    return X


def fitted(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MLPAutoencoder(2, max_iter=1, random_state=0).fit(X)


# AutoencoderImputer


# promise: missing.rst / Edge cases
def test_an_imputer_of_one_column_says_why_rather_than_lower_n_components():
    X = np.random.RandomState(0).rand(50, 1)
    X[3, 0] = np.nan
    with pytest.raises(ValueError, match="single column") as info:
        AutoencoderImputer().fit(X)
    assert "SimpleImputer" in str(info.value)
    assert "Lower n_components" not in str(info.value)


def test_too_wide_a_model_for_the_observed_entries_says_which_width_fits():
    X = complete_rows(8, 6)
    X[:, :3][np.random.RandomState(1).rand(8, 3) < 0.6] = np.nan
    with pytest.raises(ValueError, match=r"Lower n_components to \d+ or less"):
        MLPAutoencoder(5, max_iter=1).fit(X)


def test_an_autoencoder_parameter_given_to_the_imputer_points_to_autoencoder():
    with pytest.raises(TypeError, match=r"autoencoder=MLPAutoencoder\(.*max_iter=3"):
        AutoencoderImputer(max_iter=3)
    # Its own parameters, clone and pickle are untouched.
    assert AutoencoderImputer(2, add_indicator=True).get_params()["n_components"] == 2
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        AutoencoderImputer(colour="red")


# promise: missing.rst / AutoencoderImputer
def test_an_imputer_with_another_placeholder_refuses_nan():
    X = with_hole(complete_rows())
    with pytest.raises(ValueError, match="missing_values=-1 marks the missing"):
        AutoencoderImputer(missing_values=-1).fit(X)
    X = complete_rows()
    X[2, 2] = -1
    imputed = AutoencoderImputer(missing_values=-1, random_state=0).fit_transform(X)
    assert np.isfinite(imputed).all() and imputed[2, 2] != -1
    with pytest.raises(ValueError, match="missing_values=-1 marks the missing"):
        AutoencoderImputer(missing_values=-1, random_state=0).fit(X).transform(
            with_hole(complete_rows())
        )


# Metrics


# promise: sizing.rst / Explained variance, for any model
@pytest.mark.parametrize("metric", [explained_variance, reconstruction_error])
def test_metrics_name_missing_entries_and_the_way_out(metric):
    X = complete_rows()
    ae = fitted(X)
    with pytest.raises(ValueError, match=r"X has missing entries \(NaN\).*score"):
        metric(ae, with_hole(X))


def test_compare_refuses_missing_test_entries_before_fitting_anything():
    X = complete_rows()
    model = MLPAutoencoder(2, max_iter=1)
    with pytest.raises(ValueError, match="X_test has missing entries"):
        compare({"ae": model}, X[:40], with_hole(X[40:]))
    assert not hasattr(model, "n_features_in_")


def test_compare_names_the_models_that_cannot_fit_missing_entries():
    X = complete_rows()
    pca, ae = PCA(2), MLPAutoencoder(2, max_iter=1)
    with pytest.raises(ValueError, match=r"\['pca'\] cannot fit on"):
        compare({"pca": pca, "ae": ae}, with_hole(X[:40]), X[40:])
    assert not hasattr(pca, "components_") and not hasattr(ae, "n_features_in_")
    # Models that fit on NaN are compared on complete test rows.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = compare({"ae": ae}, with_hole(X[:40]), X[40:])
    assert np.isfinite(table.loc["ae", "test_mse"])


# promise: vs_pca.rst / Comparing your own models
def test_compare_shows_the_width_a_fraction_chose():
    X = complete_rows(80, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPAutoencoder(0.9, max_iter=1, random_state=0)
        table = compare({"ae": model, "pca": PCA(0.9)}, X[:60], X[60:])
    assert table.loc["ae", "n_components"] == model.n_components_
    assert table.loc["pca", "n_components"] == PCA(0.9).fit(X[:60]).n_components_


# ONNX


# promise: onnx.rst / What the graph computes
def test_onnx_opset_older_than_the_graph_needs_says_which_it_needs():
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    import skl2onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from skae.onnx import to_onnx

    X = complete_rows().astype(np.float32)
    ae = fitted(X)
    with pytest.raises(ValueError, match="opset 9"):
        to_onnx(ae, target_opset=8)
    model = to_onnx(ae, target_opset=9)
    assert {o.domain: o.version for o in model.opset_import}[""] == 9
    pipeline = make_pipeline(fitted(X), LogisticRegression())
    pipeline.fit(X, (X[:, 0] > 0.5).astype(int))
    with pytest.raises(ValueError, match="opset 9"):
        skl2onnx.to_onnx(pipeline, X[:1], target_opset=8)


# promise: onnx.rst / What the graph computes
def test_an_imputer_in_a_pipeline_is_refused_for_onnx_with_skaes_message():
    pytest.importorskip("skl2onnx")
    import skl2onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    import skae.onnx  # noqa: F401  (registers skae's converters)

    X = complete_rows().astype(np.float32)
    pipeline = make_pipeline(
        AutoencoderImputer(random_state=0), LogisticRegression()
    ).fit(with_hole(X), (X[:, 0] > 0.5).astype(int))
    with pytest.raises(NotImplementedError, match="AutoencoderImputer has no ONNX"):
        skl2onnx.to_onnx(pipeline, X[:1])


# Model files: who wrote them


def rewrite_versions(path, tmp_path, versions):
    """Return a copy of the model file at `path` whose metadata names `versions`.

    The digest is recomputed, as skae would when writing such a file.
    """
    import safetensors.torch

    from skae import _persistence

    data = path.read_bytes()
    metadata, _, _ = _persistence._read_metadata(data, path)
    tensors = safetensors.torch.load(data)
    if versions is None:
        metadata.pop("versions")
    else:
        metadata["versions"] = versions
    raw = safetensors.torch.save(
        tensors, metadata={"skae": json.dumps(metadata, allow_nan=True)}
    )
    new = tmp_path / "rewritten.skae"
    _persistence._atomic_write(new, *_persistence._with_digest(raw, new))
    return new


@pytest.fixture
def model_file(tmp_path):
    X = complete_rows()
    path = tmp_path / "model.skae"
    fitted(X).save(path)
    return path, X


# promise: saving.rst / What ``load`` checks
def test_a_file_from_a_newer_skae_loads_with_a_warning(model_file, tmp_path):
    path, X = model_file
    newer = rewrite_versions(path, tmp_path, {"skae": "99.0.0"})
    with pytest.warns(UserWarning, match=r"written by skae 99\.0\.0, newer than"):
        loaded = skae.load(newer)
    np.testing.assert_array_equal(loaded.transform(X), skae.load(path).transform(X))


# promise: saving.rst / What ``load`` checks
def test_a_file_from_an_older_skae_loads_without_a_word(model_file, tmp_path):
    path, _ = model_file
    older = rewrite_versions(path, tmp_path, {"skae": "0.0.1"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skae.load(older)


# promise: saving.rst / What ``load`` checks
@pytest.mark.parametrize("versions", [None, {}, {"skae": 1}])
def test_a_file_that_names_no_skae_version_is_refused(model_file, tmp_path, versions):
    path, _ = model_file
    anonymous = rewrite_versions(path, tmp_path, versions)
    with pytest.raises(skae.ModelFileError, match="names the skae version"):
        skae.load(anonymous)


# Missing entries


# promise: missing.rst / Edge cases
def test_a_row_without_observed_entries_is_coded_as_the_means_reconstruction():
    import torch

    X = with_hole(complete_rows())
    # Trained on every row, so that the fill is the column means of X.
    ae = MLPAutoencoder(2, max_iter=1, random_state=0, early_stopping=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae.fit(X)
    empty = np.full((2, X.shape[1]), np.nan)
    codes = ae.transform(empty)
    np.testing.assert_array_equal(codes[0], codes[1])
    means = np.nanmean(X, axis=0)
    with torch.no_grad():
        once = ae.decoder_(ae.encoder_(torch.tensor(means[None], dtype=torch.float32)))
        expected = ae.encoder_(once).numpy()
    np.testing.assert_allclose(codes[:1], expected, rtol=1e-5, atol=1e-6)
    # Not the code of the column means themselves: one round away from it.
    assert not np.allclose(codes[0], ae.transform(means[None])[0], atol=1e-6)


def test_predict_is_gone_and_its_error_names_reconstruct():
    ae = fitted(complete_rows())
    assert not hasattr(ae, "predict")
    with pytest.raises(AttributeError, match=r"no predict.*reconstruct\(X\)"):
        ae.predict(complete_rows())
    with pytest.raises(AttributeError, match="has no attribute 'colour'"):
        ae.colour  # noqa: B018


@pytest.mark.parametrize("version", ["", "unknown", "v9.0.0"])
def test_a_file_naming_no_version_number_loads_with_a_warning(
    model_file, tmp_path, version
):
    path, _ = model_file
    odd = rewrite_versions(path, tmp_path, {"skae": version})
    with pytest.warns(UserWarning, match="not a version number"):
        skae.load(odd)


def test_compare_says_which_option_gives_a_width_search_enough_rows(tmp_path, capsys):
    from skae._cli import main

    with pytest.raises(SystemExit):
        main(
            [
                "compare",
                "--variance",
                "0.9",
                "--train-size",
                "10",
                "--out",
                str(tmp_path / "r"),
            ]
        )
    assert "--train-size 11 or more" in capsys.readouterr().err


def test_compare_refuses_no_models_and_shows_a_pipelines_width():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = complete_rows(80, 8)
    with pytest.raises(ValueError, match="models is empty"):
        compare({}, X[:60], X[60:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = make_pipeline(StandardScaler(), MLPAutoencoder(0.9, max_iter=1))
        table = compare({"pipeline": pipeline}, X[:60], X[60:])
    assert table.loc["pipeline", "n_components"] == pipeline[-1].n_components_


def test_onnx_opset_that_is_not_an_int_is_named():
    pytest.importorskip("skl2onnx")
    from skae.onnx import to_onnx

    with pytest.raises(TypeError, match="target_opset='x' should be an int"):
        to_onnx(fitted(complete_rows().astype(np.float32)), target_opset="x")
