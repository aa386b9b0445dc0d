import functools
import itertools
import math
import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import NotFittedError

from skae import MLPAutoencoder
from skae._presets import CHAPTER_PARAMS
from skae.datasets import load_mnist_sample

import _helpers

# Wider and longer-trained than _helpers.tiny; no seed: tests that need one set it.
tiny = functools.partial(
    _helpers.tiny, hidden_layer_sizes=(16,), max_iter=5, random_state=None
)

CHAPTER_PARAMS_SPELLED_OUT = dict(
    n_components=100,
    hidden_layer_sizes=(256, 128),
    activation="logistic",
    latent_activation="logistic",
    output_activation="logistic",
    loss="squared_error",
    solver="adam",
    learning_rate_init=0.01,
    learning_rate="constant",
    early_stopping=False,
    batch_size=256,
    max_iter=10,
    shuffle=True,
)


def test_chapter_preset_is_the_chapter_model():
    assert CHAPTER_PARAMS == CHAPTER_PARAMS_SPELLED_OUT


def chapter_loop(x_train, seed):
    """The chapter's training loop, written from scratch.

    Two departures, both so that the two loops see the same batches and the
    comparison tests the model rather than the luck of the shuffle: the order is
    drawn with torch.randperm from the seeded torch RNG (the chapter uses
    np.random.permutation, an equally uniform draw), and each epoch permutes the
    original order rather than the previous epoch's.
    """

    class MLP(torch.nn.Module):
        def __init__(self, layer_sizes):
            super().__init__()
            self.layers = torch.nn.ModuleList()
            for n_in, n_out in itertools.pairwise(layer_sizes):
                self.layers.append(torch.nn.Linear(n_in, n_out))
                self.layers.append(torch.nn.Sigmoid())

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    rng_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        encoder = MLP([784, 256, 128, 100])
        decoder = MLP([100, 128, 256, 784])
        optimizer = torch.optim.Adam(
            list(encoder.parameters()) + list(decoder.parameters()), lr=0.01
        )
        curve = []
        for _ in range(10):
            shuffled = x_train[torch.randperm(len(x_train)).numpy()]
            losses = []
            for start in range(0, len(shuffled), 256):
                X = torch.from_numpy(shuffled[start : start + 256]).to(torch.float32)
                loss = 0.5 * torch.nn.functional.mse_loss(X, decoder(encoder(X)))
                losses.append(loss.item())
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            curve.append(np.average(losses))
    finally:
        torch.random.set_rng_state(rng_state)
    return np.array(curve)


# promise: chapter.rst / How do I run the chapter's model?
# promise: README.md / The chapter's model, by parameters
@pytest.mark.parametrize("seed", [0, 1])
def test_chapter_model_matches_the_chapter_loop(seed):
    X, _ = load_mnist_sample()
    X = X[:3000].astype(np.float64)
    expected = chapter_loop(X, seed)
    ae = MLPAutoencoder(**CHAPTER_PARAMS_SPELLED_OUT, random_state=seed).fit(X)
    assert ae.n_iter_ == 10
    assert_allclose(ae.loss_curve_, expected, rtol=0.03)
    # The architecture is the chapter's, layer by layer.
    linear_sizes = [
        (layer.in_features, layer.out_features)
        for module in (ae.encoder_, ae.decoder_)
        for layer in module
        if isinstance(layer, torch.nn.Linear)
    ]
    assert linear_sizes == [
        (784, 256),
        (256, 128),
        (128, 100),
        (100, 128),
        (128, 256),
        (256, 784),
    ]
    assert sum(isinstance(m, torch.nn.Sigmoid) for m in ae.encoder_) == 3
    assert sum(isinstance(m, torch.nn.Sigmoid) for m in ae.decoder_) == 3


def test_fitted_attributes(X_small):
    ae = tiny(max_iter=4, random_state=0).fit(X_small)
    assert ae.n_features_in_ == 10
    assert ae.n_iter_ == 4
    assert len(ae.loss_curve_) == 4
    assert ae.loss_ == ae.loss_curve_[-1]
    assert isinstance(ae.encoder_, torch.nn.Module)
    assert isinstance(ae.decoder_, torch.nn.Module)
    assert linear_layers(ae.encoder_)[0].in_features == 10
    assert linear_layers(ae.decoder_)[-1].out_features == 10
    assert not hasattr(ae, "feature_names_in_")


def linear_layers(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


def test_training_reduces_the_loss(X_small):
    ae = tiny(
        init="random",
        max_iter=30,
        learning_rate_init=0.01,
        learning_rate="constant",
        random_state=0,
    )
    ae.fit(X_small)
    assert ae.loss_curve_[-1] < 0.2 * ae.loss_curve_[0]
    assert ae.score(X_small) > -0.01


def test_shapes_and_methods(X_small):
    ae = tiny(random_state=0).fit(X_small)
    Z = ae.transform(X_small)
    assert Z.shape == (200, 2)
    X_reconstructed = ae.inverse_transform(Z)
    assert X_reconstructed.shape == X_small.shape
    # One float32 pass against two with a float64 code between them: float32's
    # tolerance, relative to the data's scale (X_small is in [0, 1]).
    assert_allclose(ae.reconstruct(X_small), X_reconstructed, rtol=1e-5, atol=1e-6)
    # fit_transform is fit, then transform: the same computation, the same bits.
    assert_array_equal(ae.fit_transform(X_small), Z)


def test_score_is_negative_mean_squared_error(X_small):
    ae = tiny(random_state=0).fit(X_small)
    residual = X_small - ae.reconstruct(X_small)
    assert_allclose(ae.score_samples(X_small), -np.mean(residual**2, axis=1))
    assert ae.score(X_small) == pytest.approx(-np.mean(residual**2))
    assert ae.score(X_small) == pytest.approx(ae.score_samples(X_small).mean())


def test_feature_names_out(X_small):
    ae = tiny(n_components=3, random_state=0).fit(X_small)
    assert_array_equal(
        ae.get_feature_names_out(),
        ["mlpautoencoder0", "mlpautoencoder1", "mlpautoencoder2"],
    )


def test_pandas_input_and_output(X_small):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_small, columns=[f"pixel{i}" for i in range(10)])
    ae = tiny(random_state=0).set_output(transform="pandas").fit(frame)
    assert_array_equal(ae.feature_names_in_, frame.columns)
    Z = ae.transform(frame)
    assert isinstance(Z, pd.DataFrame)
    assert list(Z.columns) == ["mlpautoencoder0", "mlpautoencoder1"]
    assert_array_equal(Z.index, frame.index)


def test_random_state_leaves_global_rngs_untouched(X_small):
    torch_state = torch.random.get_rng_state()
    numpy_state = np.random.get_state()
    ae = tiny(random_state=0).fit(X_small)
    ae.transform(X_small)
    tiny(random_state=np.random.RandomState(3)).fit(X_small)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert_array_equal(after[1], numpy_state[1])
    assert after[2] == numpy_state[2]


def test_same_random_state_gives_identical_output(X_small):
    first = tiny(random_state=42).fit(X_small)
    second = tiny(random_state=42).fit(X_small)
    assert first.loss_curve_ == second.loss_curve_
    assert_array_equal(first.transform(X_small), second.transform(X_small))
    other = tiny(random_state=43).fit(X_small)
    assert not np.array_equal(first.transform(X_small), other.transform(X_small))


def test_random_state_none_follows_numpy_global_seed(X_small):
    # As every scikit-learn estimator: np.random.seed makes fits reproducible.
    torch.manual_seed(1)
    np.random.seed(0)
    first = tiny(random_state=None).fit(X_small).transform(X_small)
    torch.manual_seed(2)
    np.random.seed(0)
    second = tiny(random_state=None).fit(X_small).transform(X_small)
    assert_array_equal(first, second)
    third = tiny(random_state=None).fit(X_small).transform(X_small)
    assert not np.array_equal(first, third)
    # Only numpy's global state is used, never torch's.
    torch_state = torch.random.get_rng_state()
    tiny(random_state=None).fit(X_small)
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_random_state_does_not_depend_on_global_seed(X_small):
    torch.manual_seed(1)
    np.random.seed(1)
    first = tiny(random_state=7).fit(X_small).transform(X_small)
    torch.manual_seed(2)
    np.random.seed(2)
    second = tiny(random_state=7).fit(X_small).transform(X_small)
    assert_array_equal(first, second)


@pytest.mark.parametrize(
    "dtype, expected",
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int64, np.float64),
        (np.int32, np.float64),
    ],
)
def test_output_dtype_follows_input(X_small, dtype, expected):
    X = (X_small * 10).astype(dtype)
    ae = tiny(random_state=0).fit(X)
    Z = ae.transform(X)
    assert Z.dtype == expected
    assert ae.inverse_transform(Z).dtype == expected
    assert ae.reconstruct(X).dtype == expected
    assert next(ae.encoder_.parameters()).dtype == torch.float32


def test_float32_and_float64_inputs_give_the_same_model(X_small):
    from_64 = tiny(random_state=0).fit(X_small)
    from_32 = tiny(random_state=0).fit(X_small.astype(np.float32))
    assert from_64.loss_curve_ == from_32.loss_curve_


def test_transform_is_invariant_to_batching_at_float32_precision():
    rng = np.random.RandomState(0)
    X = rng.rand(5000, 20)
    ae = tiny(hidden_layer_sizes=(64, 32), max_iter=1, random_state=0).fit(X[:500])
    full = ae.transform(X)
    by_row = np.vstack([ae.transform(X[i : i + 1]) for i in range(0, 5000, 397)])
    assert_allclose(by_row, full[::397], rtol=1e-5, atol=1e-6)
    order = rng.permutation(5000)
    assert_allclose(ae.transform(X[order]), full[order], rtol=1e-5, atol=1e-6)


def test_pickle_round_trip_gives_identical_outputs(X_small):
    ae = tiny(random_state=0).fit(X_small)
    restored = pickle.loads(pickle.dumps(ae))
    assert_array_equal(restored.transform(X_small), ae.transform(X_small))
    assert_array_equal(restored.reconstruct(X_small), ae.reconstruct(X_small))
    assert restored.loss_curve_ == ae.loss_curve_


def test_binary_crossentropy_trains_on_unit_interval_data(X_small):
    ae = tiny(
        loss="binary_crossentropy",
        output_activation="logistic",
        max_iter=20,
        learning_rate_init=0.01,
        random_state=0,
    ).fit(X_small)
    assert ae.loss_curve_[-1] < ae.loss_curve_[0]
    X_reconstructed = ae.reconstruct(X_small)
    assert X_reconstructed.min() >= 0 and X_reconstructed.max() <= 1


@pytest.mark.parametrize("solver", ["adam", "adamw", "sgd"])
def test_solvers(X_small, solver):
    ae = tiny(
        init="random",
        solver=solver,
        max_iter=20,
        learning_rate_init=0.01,
        random_state=0,
    )
    ae.fit(X_small)
    assert ae.loss_curve_[-1] < ae.loss_curve_[0]


@pytest.mark.parametrize("activation", ["logistic", "relu", "tanh", "gelu", "identity"])
def test_activations(X_small, activation):
    ae = tiny(activation=activation, random_state=0, init="random").fit(X_small)
    expected = {
        "logistic": torch.nn.Sigmoid,
        "relu": torch.nn.ReLU,
        "tanh": torch.nn.Tanh,
        "gelu": torch.nn.GELU,
    }.get(activation)
    layers = [type(m) for m in ae.encoder_.modules()]
    if expected is None:
        assert layers == [torch.nn.Sequential, torch.nn.Linear, torch.nn.Linear]
    else:
        assert layers.count(expected) == 1
    assert np.isfinite(ae.transform(X_small)).all()
    assert ae.loss_curve_[-1] < ae.loss_curve_[0]


def test_alpha_shrinks_the_weights(X_small):
    def weight_norm(ae):
        return sum(
            float(layer.weight.detach().square().sum())
            for layer in linear_layers(ae.encoder_) + linear_layers(ae.decoder_)
        )

    plain = tiny(max_iter=20, random_state=0).fit(X_small)
    penalised = tiny(max_iter=20, alpha=1.0, random_state=0).fit(X_small)
    assert weight_norm(penalised) < weight_norm(plain)


@pytest.mark.parametrize("init", ["pca", "random"])
def test_empty_hidden_layer_sizes_gives_a_linear_autoencoder(X_small, init):
    ae = tiny(hidden_layer_sizes=(), init=init, random_state=0).fit(X_small)
    assert [type(m) for m in ae.encoder_] == [torch.nn.Linear]
    assert [type(m) for m in ae.decoder_] == [torch.nn.Linear]


@pytest.mark.parametrize(
    "n_components, expected",
    [(2, (512, 256, 128)), (16, (512, 256, 128)), (17, (512, 256))],
)
def test_auto_hidden_layer_sizes_deepen_short_codes(X_small, n_components, expected):
    X = np.hstack([X_small, X_small])  # 24 features, room for 17 components
    ae = MLPAutoencoder(n_components, max_iter=1, random_state=0).fit(X)
    assert ae.hidden_layer_sizes_ == expected
    widths = [m.out_features for m in ae.encoder_.correction if hasattr(m, "weight")]
    assert widths == [*expected, n_components]


def test_hidden_layer_sizes_attribute(X_small):
    ae = MLPAutoencoder(hidden_layer_sizes=[7, 5], max_iter=1)
    with pytest.raises(AttributeError, match="not fitted"):
        _ = ae.hidden_layer_sizes_
    assert ae.fit(X_small).hidden_layer_sizes_ == (7, 5)
    assert ae.get_params()["hidden_layer_sizes"] == [7, 5]


def test_batch_size_larger_than_n_samples_is_clipped(X_small):
    # One step an epoch, over all 200 rows: the same as batch_size=200.
    ae = tiny(batch_size=10_000, random_state=0).fit(X_small)
    same = tiny(batch_size=200, random_state=0).fit(X_small)
    assert ae.n_iter_ == 5
    assert ae.loss_curve_ == same.loss_curve_


def test_verbose_prints_one_line_per_epoch(X_small, capsys):
    tiny(max_iter=3, verbose=1, random_state=0).fit(X_small)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("Epoch 1, loss = ")


def test_silent_when_not_verbose(X_small, capsys):
    ae = tiny(random_state=0).fit(X_small)
    ae.transform(X_small)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_device_auto_falls_back_to_cpu_without_accelerators(X_small, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    ae = tiny(device="auto", random_state=0).fit(X_small)
    assert next(ae.encoder_.parameters()).device.type == "cpu"


@pytest.mark.parametrize(
    "device, match",
    [
        ("cuda", "CUDA is not available"),
        ("cuda:3", "CUDA is not available"),
        ("gpu", "not a torch device"),
        ("meta", "not supported"),
    ],
)
def test_unavailable_device_is_refused(X_small, monkeypatch, device, match):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=match):
        tiny(device=device).fit(X_small)


# Bad input: clear errors, and a fitted model left unchanged.


def test_unfitted_model_raises_not_fitted(X_small):
    for method in ("transform", "inverse_transform", "reconstruct", "score"):
        with pytest.raises(NotFittedError):
            getattr(tiny(), method)(X_small)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_components=11), "n_components=11 must be <= n_features=10"),
        (dict(n_components=0), "n_components"),
        (dict(hidden_layer_sizes=(8, 0)), "hidden_layer_sizes"),
        (dict(hidden_layer_sizes=(8, 2.5)), "hidden_layer_sizes"),
        (dict(activation="sigmoid"), "activation"),
        (dict(batch_size=-1), "batch_size"),
        (dict(learning_rate_init=0), "learning_rate_init"),
        (dict(solver="lbfgs"), "solver"),
        (dict(loss="binary_crossentropy"), "output_activation='logistic'"),
    ],
)
def test_invalid_parameters(X_small, params, match):
    with pytest.raises(ValueError, match=match):
        tiny(**params).fit(X_small)


def test_binary_crossentropy_refuses_data_outside_unit_interval(X_small):
    ae = tiny(loss="binary_crossentropy", output_activation="logistic")
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\]"):
        ae.fit(X_small - 0.5)


def test_callbacks_see_every_epoch_and_can_stop(X_small):
    seen = []

    def record_epoch(estimator, record):
        seen.append((record.epoch, record.train_loss, estimator.n_iter_))
        # The model is usable for inference between epochs.
        assert estimator.transform(X_small[:3]).shape == (3, 2)

    def stop_after_three(estimator, record):
        return record.epoch == 2

    ae = tiny(max_iter=10, random_state=0, callbacks=[record_epoch, stop_after_three])
    ae.fit(X_small)
    assert ae.n_iter_ == 3
    assert [epoch for epoch, _, _ in seen] == [0, 1, 2]
    assert [loss for _, loss, _ in seen] == ae.loss_curve_
    assert [n_iter for _, _, n_iter in seen] == [1, 2, 3]


def test_callbacks_do_not_change_training(X_small):
    plain = tiny(random_state=0).fit(X_small)
    watched = tiny(
        random_state=0, callbacks=[lambda est, rec: est.reconstruct(X_small)]
    )
    watched.fit(X_small)
    assert watched.loss_curve_ == plain.loss_curve_


# promise: performance.rst / A row's answer does not depend on its neighbours
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "params", [{}, {"init": "random"}, {"hidden_layer_sizes": ()}], ids=str
)
def test_a_rows_answer_has_the_same_bits_whatever_rows_come_with_it(
    monkeypatch, params, dtype
):
    from skae import _training

    rng = np.random.RandomState(0)
    X = (rng.rand(1000, 3) @ rng.rand(3, 12) + 0.1 * rng.rand(1000, 12)).astype(dtype)
    X[5, 2] = np.nan  # a row with a hole takes the completion path
    ae = MLPAutoencoder(3, max_iter=2, random_state=0, **params).fit(X)
    codes = ae.transform(X)
    methods = {
        "transform": (ae.transform, X),
        "inverse_transform": (ae.inverse_transform, codes),
        "reconstruct": (ae.reconstruct, X),
        "score_samples": (ae.score_samples, X),
    }
    for name, (method, data) in methods.items():
        together = method(data)
        assert together.dtype == (np.float64 if name == "score_samples" else dtype)
        alone = np.concatenate([method(data[i : i + 1]) for i in range(20)])
        assert_array_equal(alone, together[:20], err_msg=name)
        assert_array_equal(method(data[::-1])[::-1], together, err_msg=name)
    monkeypatch.setattr(_training, "INFERENCE_BATCH_SIZE", 7)
    assert_array_equal(ae.transform(X), codes)
    # score is the exactly summed mean of score_samples: a subset's score is that
    # subset's mean, in any order.
    assert ae.score(X[:20]) == math.fsum(ae.score_samples(X)[:20]) / 20
    assert ae.score(X[::-1]) == ae.score(X)
