"""Bad input at scale: every call returns finite output or refuses cleanly.

Hypothesis draws shapes (1 row up, 1 to 50 features), dtypes, values (zeros,
constant columns, 1e-30, 1e30, inf, NaN) and containers (lists, DataFrames,
sparse matrices). Each call either returns finite output of the right shape and
dtype, or raises a ValueError or TypeError, and then the fitted model is exactly
as it was: weights and every fitted attribute. Runs derandomised, so CI sees the
same examples every time.
"""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import skae
from skae import MLPAutoencoder

from _helpers import fingerprint

pd = pytest.importorskip("pandas")

N_FEATURES = 6
SETTINGS = settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The default path (PCA start, one-cycle, auto architecture) and a random start.
PARAMS = {
    "defaults": {"max_iter": 1, "random_state": 0},
    "random init": {
        "max_iter": 1,
        "random_state": 0,
        "init": "random",
        "hidden_layer_sizes": (4,),
    },
}

SPECIAL = [0.0, 1.0, -1.0, 1e-30, -1e-30, 1e30, np.inf, -np.inf, np.nan, 3e38]


@st.composite
def arrays(draw, n_features=None):
    """An array-like X: shape, dtype, values and container all drawn."""
    n_rows = draw(st.integers(1, 30))
    n_features = n_features or draw(st.integers(1, 50))
    dtype = draw(
        st.sampled_from(
            ["float64", "float32", "float16", "int64", "int8", "bool", "object"]
        )
    )
    base = draw(
        hnp.arrays(
            np.float64,
            (n_rows, n_features),
            elements=st.one_of(
                st.floats(-3, 3, allow_nan=False), st.sampled_from(SPECIAL)
            ),
        )
    )
    if draw(st.booleans()):
        # A constant column, or all zeros: what scalers often produce.
        base[:, draw(st.integers(0, n_features - 1))] = draw(st.sampled_from(SPECIAL))
    if dtype == "object":
        X = base.astype(object)
    elif dtype in ("int64", "int8", "bool"):
        finite = np.nan_to_num(base, nan=0.0, posinf=1.0, neginf=-1.0)
        X = np.clip(finite, -100, 100).astype(dtype)
    else:
        with np.errstate(over="ignore"):
            X = base.astype(dtype)
    container = draw(st.sampled_from(["array", "list", "frame", "sparse"]))
    if container == "list":
        return X.tolist()
    if container == "frame":
        return pd.DataFrame(X, columns=[f"f{i}" for i in range(n_features)])
    if container == "sparse" and dtype not in ("object", "float16"):
        return scipy.sparse.csr_matrix(X)
    return X


def fitted(params):
    rng = np.random.RandomState(0)
    X = rng.rand(40, 3) @ rng.rand(3, N_FEATURES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MLPAutoencoder(**params).fit(X)


MODELS = {name: pickle.dumps(fitted(params)) for name, params in PARAMS.items()}


def n_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def call(ae, method, X):
    """Call `method`; return its result, or None when it refused with a clear error."""
    before = fingerprint(ae)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return getattr(ae, method)(X)
    except (ValueError, TypeError) as error:
        assert len(str(error)) > 15, f"an unclear message: {error!r}"
        assert fingerprint(ae) == before, f"{method} changed the model, then raised"
        return None


def check_output(output, rows, width):
    assert isinstance(output, np.ndarray)
    assert output.shape == (rows, width)
    assert output.dtype in (np.float32, np.float64)
    assert np.isfinite(output).all()


@pytest.mark.parametrize("params", PARAMS)
@SETTINGS
@given(X=arrays())
def test_fit(params, X):
    ae = pickle.loads(MODELS[params])
    if call(ae, "fit", X) is not None:
        check_output(ae.transform(X), n_rows(X), ae.n_components)
        check_output(ae.reconstruct(X), n_rows(X), ae.n_features_in_)


@pytest.mark.parametrize("params", PARAMS)
@SETTINGS
@given(X=arrays(), first=st.booleans())
def test_partial_fit(params, X, first):
    ae = MLPAutoencoder(**PARAMS[params]) if first else pickle.loads(MODELS[params])
    if call(ae, "partial_fit", X) is not None:
        check_output(ae.transform(X), n_rows(X), ae.n_components)


@pytest.mark.parametrize("method", ["transform", "reconstruct", "score_samples"])
@SETTINGS
@given(X=st.one_of(arrays(), arrays(n_features=N_FEATURES)))
def test_inference(method, X):
    ae = pickle.loads(MODELS["defaults"])
    output = call(ae, method, X)
    if output is None:
        return
    if method == "score_samples":
        # A row without an observed entry has no error to score.
        dense = np.asarray(X.toarray() if scipy.sparse.issparse(X) else X, dtype=float)
        empty = np.isnan(dense).all(axis=1)
        assert np.isnan(output[empty]).all()
        output = np.where(empty, 0.0, output)[:, None]
    width = {"transform": 2, "reconstruct": N_FEATURES, "score_samples": 1}[method]
    check_output(output, n_rows(X), width)


@SETTINGS
@given(X=st.one_of(arrays(), arrays(n_features=2)))
def test_inverse_transform(X):
    ae = pickle.loads(MODELS["defaults"])
    output = call(ae, "inverse_transform", X)
    if output is not None:
        check_output(output, n_rows(X), N_FEATURES)


@SETTINGS
@given(X=arrays(n_features=N_FEATURES))
def test_score(X):
    ae = pickle.loads(MODELS["random init"])
    score = call(ae, "score", X)
    assert score is None or np.isfinite(score)


@pytest.mark.parametrize("params", PARAMS)
@settings(SETTINGS, max_examples=40)
@given(X=arrays())
def test_save_and_load(params, X, tmp_path_factory):
    ae = MLPAutoencoder(**PARAMS[params])
    if call(ae, "fit", X) is None:
        return
    path = tmp_path_factory.mktemp("models") / "model.skae"
    ae.save(path)
    loaded = skae.load(path)
    assert fingerprint(loaded) == fingerprint(ae)
    np.testing.assert_array_equal(loaded.transform(X), ae.transform(X))


@SETTINGS
@given(
    holes=hnp.arrays(bool, (40, N_FEATURES), elements=st.booleans()),
    container=st.sampled_from(["dense", "csr", "csc"]),
)
def test_missing_and_sparse_training(holes, container):
    """Fits on data with holes (NaN) or sparse data give finite codes, or refuse."""
    rng = np.random.RandomState(0)
    X = rng.rand(40, 2) @ rng.rand(2, N_FEATURES)
    if container == "dense":
        X[holes] = np.nan
    else:
        X[holes] = 0.0
        X = getattr(scipy.sparse, f"{container}_matrix")(X)
    ae = MLPAutoencoder(**PARAMS["defaults"])
    if call(ae, "fit", X) is not None:
        check_output(ae.transform(X), 40, 2)
        check_output(ae.inverse_transform(ae.transform(X)), 40, N_FEATURES)
