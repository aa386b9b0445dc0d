"""Bad input never changes a fitted model; diverging training is caught."""

import numpy as np
import pytest
import scipy.sparse
from numpy.testing import assert_array_equal
from sklearn.exceptions import NotFittedError

from _helpers import same_weights, sparse_with_nan, tiny, weights, with_value

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# Parameters under which the divergence cases train safely.
TINY_SAFE = {
    "learning_rate_init": 0.001,
    "learning_rate": "constant",
    "solver": "adam",
    "max_iter": 2,
}


def codes_with_nan(X):
    """Two of X's columns as codes of width 2, with one NaN."""
    return with_value(X[:, :5], np.nan)[:, 3:]


def frame_with_text(X):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)])
    frame["f9"] = "dark"
    return frame


# (method, builds the argument from the training data X, error, what it must say)
BAD_INPUTS = {
    "fit all NaN": (
        "fit",
        lambda X: np.full_like(X, np.nan),
        ValueError,
        "all its 2000 entries are NaN",
    ),
    "fit +inf": ("fit", lambda X: with_value(X, np.inf), ValueError, "infinity"),
    "fit -inf": ("fit", lambda X: with_value(X, -np.inf), ValueError, "infinity"),
    "fit None": ("fit", lambda X: None, TypeError, "X is None"),
    "fit object None": (
        "fit",
        lambda X: np.array([[1.0, None]] * 5, dtype=object),
        ValueError,
        "NaN",
    ),
    "fit strings": ("fit", lambda X: [["a"] * 10] * 5, ValueError, "string to float"),
    "fit complex": ("fit", lambda X: X + 1j, ValueError, "Complex data"),
    "fit 1-D": ("fit", lambda X: X[0], ValueError, "Expected 2D array"),
    "fit 3-D": ("fit", lambda X: X[None], ValueError, "dim 3"),
    "fit empty": ("fit", lambda X: X[:0], ValueError, "0 sample"),
    "fit zero features": ("fit", lambda X: X[:, :0], ValueError, "0 feature"),
    "fit beyond float32": (
        "fit",
        lambda X: with_value(X, 1e300),
        ValueError,
        "float32 range",
    ),
    "fit ragged": ("fit", lambda X: [[1.0, 2.0], [3.0]], ValueError, "inhomogeneous"),
    "fit pandas text": ("fit", frame_with_text, ValueError, "string to float: 'dark'"),
    "fit sparse NaN": ("fit", sparse_with_nan, ValueError, "Sparse X contains NaN"),
    "transform sparse inf": (
        "transform",
        lambda X: scipy.sparse.csr_matrix(with_value(X, np.inf)),
        ValueError,
        "infinity",
    ),
    "transform inf": (
        "transform",
        lambda X: with_value(X, np.inf),
        ValueError,
        "infinity",
    ),
    "transform beyond float32": (
        "transform",
        lambda X: with_value(X, 1e300),
        ValueError,
        "float32 range",
    ),
    "transform features": (
        "transform",
        lambda X: X[:, :9],
        ValueError,
        "X has 9 features, but MLPAutoencoder is expecting 10",
    ),
    "transform 1-D": ("transform", lambda X: X[0], ValueError, "Expected 2D array"),
    "transform empty": ("transform", lambda X: X[:0], ValueError, "0 sample"),
    "transform sparse NaN": (
        "transform",
        sparse_with_nan,
        ValueError,
        "Sparse X contains NaN",
    ),
    "transform strings": ("transform", lambda X: [["x"] * 10], ValueError, "string"),
    "inverse code width": (
        "inverse_transform",
        lambda X: np.zeros((4, 3)),
        ValueError,
        "3 features, but inverse_transform expects codes of width n_components=2",
    ),
    "inverse NaN": (
        "inverse_transform",
        lambda X: np.full((4, 2), np.nan),
        ValueError,
        "NaN",
    ),
    "inverse one NaN": ("inverse_transform", codes_with_nan, ValueError, "NaN"),
    "inverse 1-D": (
        "inverse_transform",
        lambda X: np.zeros(2),
        ValueError,
        "Expected 2D array",
    ),
    "inverse raveled codes": (
        "inverse_transform",
        lambda X: X[:, :2].ravel(),
        ValueError,
        "2D array",
    ),
    "inverse 3 columns of X": (
        "inverse_transform",
        lambda X: X[:, :3],
        ValueError,
        "n_components=2",
    ),
    "inverse empty": ("inverse_transform", lambda X: X[:0, :2], ValueError, "0 sample"),
    "reconstruct features": (
        "reconstruct",
        lambda X: X[:, :9],
        ValueError,
        "X has 9 features",
    ),
    "partial_fit features": (
        "partial_fit",
        lambda X: X[:, :5],
        ValueError,
        "5 features",
    ),
    "partial_fit inf": (
        "partial_fit",
        lambda X: with_value(X, -np.inf),
        ValueError,
        "infinity",
    ),
    "partial_fit float32 overflow": (
        "partial_fit",
        lambda X: with_value(X, -1e39),
        ValueError,
        "float32 range",
    ),
    "score all NaN": (
        "score",
        lambda X: np.full_like(X, np.nan),
        ValueError,
        "no observed entry: all its entries are NaN",
    ),
    "score features": ("score", lambda X: X[:, :3], ValueError, "3 features"),
    "score empty": ("score", lambda X: X[:0], ValueError, "0 sample"),
}


# promise: failures.rst / A call that fails leaves the estimator as it was
@pytest.mark.filterwarnings("error::UserWarning")
@pytest.mark.parametrize("case", BAD_INPUTS, ids=str)
def test_bad_input_is_refused_and_leaves_the_model_unchanged(X_small, case):
    method, make, error, match = BAD_INPUTS[case]
    ae = tiny().fit(X_small)
    before = (weights(ae), ae.transform(X_small), ae.n_iter_, list(ae.loss_curve_))
    assert not hasattr(ae, "feature_names_in_")
    bad = make(X_small)
    with pytest.raises(error, match=match):
        getattr(ae, method)(bad)
    assert same_weights(weights(ae), before[0])
    assert_array_equal(ae.transform(X_small), before[1])
    assert (ae.n_iter_, ae.loss_curve_) == (before[2], before[3])
    # Not even the recorded features change (a bad DataFrame must not leave its
    # column names behind).
    assert ae.n_features_in_ == 10 and not hasattr(ae, "feature_names_in_")


BAD_PARAMS = {
    "n_components=0": ({"n_components": 0}, "'n_components' parameter"),
    "n_components > n_features": (
        {"n_components": 11},
        "n_components=11 must be <= n_features=10",
    ),
    "negative batch_size": ({"batch_size": -1}, "'batch_size' parameter"),
    "unknown activation": ({"activation": "swish"}, "'activation' parameter"),
    "zero-width layer": ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
    "negative learning rate": ({"learning_rate_init": -1.0}, "'learning_rate_init'"),
    "unknown loss": ({"loss": "l1"}, "'loss' parameter"),
    "validation_fraction=1": ({"validation_fraction": 1.0}, "validation_fraction"),
}


@pytest.mark.parametrize("case", BAD_PARAMS, ids=str)
def test_invalid_parameters_are_refused_and_leave_the_model_unchanged(X_small, case):
    params, match = BAD_PARAMS[case]
    ae = tiny().fit(X_small)
    before = (weights(ae), ae.transform(X_small))
    ae.set_params(**params)
    with pytest.raises(ValueError, match=match):
        ae.fit(X_small)
    assert same_weights(weights(ae), before[0])
    assert_array_equal(ae.transform(X_small), before[1])


def test_a_changed_architecture_is_refused_by_partial_fit(X_small):
    ae = tiny().partial_fit(X_small)
    before = weights(ae)
    with pytest.raises(ValueError, match="n_components=3 differs from 2"):
        ae.set_params(n_components=3).partial_fit(X_small)
    assert same_weights(weights(ae), before)


# Divergence


# promise: failures.rst / A call that fails leaves the estimator as it was
@pytest.mark.parametrize(
    "params, X_scale",
    [
        ({"learning_rate_init": 10.0, "learning_rate": "constant"}, 1.0),
        ({"solver": "sgd", "learning_rate_init": 0.1, "init": "random"}, 255.0),
    ],
    ids=["adam at lr=10", "sgd on raw 0-255 pixels"],
)
def test_divergence_is_caught_within_an_epoch(X_small, params, X_scale):
    X = np.round(X_small * X_scale)
    ae = tiny(max_iter=20, hidden_layer_sizes=(32,), **params)
    finite_epochs = []
    ae.set_params(callbacks=[lambda est, record: finite_epochs.append(record.epoch)])
    with pytest.raises(
        ValueError,
        match=r"diverged.*left as it was before this call.*Scale X.*lower "
        "learning_rate_init",
    ):
        ae.fit(X)
    assert len(finite_epochs) < 20
    # A first fit that diverges leaves the estimator unfitted, as it was.
    with pytest.raises(NotFittedError):
        ae.transform(X)
    # A refit that diverges leaves the fitted model as it was.
    ae.set_params(**TINY_SAFE).fit(X)
    before = (weights(ae), ae.transform(X), list(ae.loss_curve_))
    with pytest.raises(ValueError, match="diverged"):
        ae.set_params(**params).fit(X)
    assert same_weights(weights(ae), before[0])
    assert_array_equal(ae.transform(X), before[1])
    assert ae.loss_curve_ == before[2]


def test_an_exploding_but_finite_loss_is_caught(X_small, monkeypatch):
    from skae import _training

    real = _training.reconstruction_loss
    calls = {"n": 0}

    def explode(*args, **kwargs):
        calls["n"] += 1
        value = real(*args, **kwargs)
        return value * 1e9 if calls["n"] > 10 else value

    monkeypatch.setattr(_training, "reconstruction_loss", explode)
    ae = tiny(max_iter=5, batch_size=50)  # 4 batches an epoch
    with pytest.raises(ValueError, match="at epoch 3: the training loss reached"):
        ae.fit(X_small)
    assert not hasattr(ae, "n_iter_")
