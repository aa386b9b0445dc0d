"""precision="auto": bfloat16 where native and faster, float32 elsewhere.

The timed steps are replaced by fixed timings here: no test reads the clock.
"""

import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal

import skae
from skae import MLPAutoencoder, _precision
from skae._precision import choose_precision, native_bfloat16

from _helpers import interrupt_after_epoch


@pytest.fixture
def X():
    rng = np.random.RandomState(0)
    codes = rng.randn(400, 3)
    return (codes @ rng.randn(3, 10) + 0.1 * rng.randn(400, 10)).astype(np.float32)


def timings(monkeypatch, float32, bfloat16, native=True):
    """Make every timed step take the given seconds; count the steps taken."""
    real = _precision._timed_step
    taken = []

    def timed_step(modules, optimizer, batch, loss, precision):
        real(modules, optimizer, batch, loss, precision)
        taken.append(precision)
        return float32 if precision == "float32" else bfloat16

    monkeypatch.setattr(_precision, "_timed_step", timed_step)
    monkeypatch.setattr(_precision, "native_bfloat16", lambda device: native)
    return taken


def model(**params):
    defaults = {
        "n_components": 2,
        "hidden_layer_sizes": (8,),
        "max_iter": 3,
        "random_state": 0,
    }
    return MLPAutoencoder(**{**defaults, **params})


def fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X)


# promise: budget.rst / bfloat16 where it pays: ``precision="auto"``
def test_without_native_bfloat16_auto_is_float32_and_times_nothing(monkeypatch, X):
    taken = timings(monkeypatch, 1.0, 0.1, native=False)
    ae = fit(model(precision="auto"), X)
    assert ae.precision_ == "float32" and taken == []


# promise: budget.rst / bfloat16 where it pays: ``precision="auto"``
# promise: training.rst / Devices and precision
@pytest.mark.parametrize(
    ("bfloat16_seconds", "expected"),
    [(0.5, "bfloat16"), (0.89, "bfloat16"), (0.95, "float32"), (2.0, "float32")],
)
def test_auto_takes_bfloat16_only_when_clearly_faster(
    monkeypatch, X, bfloat16_seconds, expected
):
    taken = timings(monkeypatch, 1.0, bfloat16_seconds)
    ae = fit(model(precision="auto"), X)
    assert ae.precision_ == expected
    assert taken.count("float32") == taken.count("bfloat16") > 1


def test_the_probe_leaves_the_model_and_random_state_untouched(monkeypatch, X):
    timings(monkeypatch, 1.0, 2.0)
    auto = fit(model(precision="auto"), X)
    plain = fit(model(precision="float32"), X)
    assert auto.precision_ == plain.precision_ == "float32"
    assert_array_equal(auto.transform(X), plain.transform(X))
    assert auto.loss_curve_ == plain.loss_curve_


def test_the_choice_is_recorded_kept_and_saved(monkeypatch, X, tmp_path):
    timings(monkeypatch, 1.0, 0.5)
    ae = fit(model(precision="auto", warm_start=True), X)
    assert ae.precision_ == "bfloat16"
    # A warm start continues in the arithmetic chosen, whatever timings say now.
    timings(monkeypatch, 1.0, 2.0)
    fit(ae, X)
    assert ae.precision_ == "bfloat16"
    ae.save(tmp_path / "m.skae")
    assert skae.load(tmp_path / "m.skae").precision_ == "bfloat16"
    streamed = model(precision="auto")
    streamed.partial_fit(X)
    timings(monkeypatch, 1.0, 0.5)
    streamed.partial_fit(X)
    assert streamed.precision_ == "float32"


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_fixed_precision_is_what_precision_reports(X, precision):
    assert fit(model(precision=precision, max_iter=1), X).precision_ == precision


def test_choose_precision_on_this_machine_leaves_the_model_untouched(X):
    # Which answer native hardware gives rests on timings (the tests above fix
    # them); without native bfloat16 it is float32 whatever the timings.
    encoder, decoder = model(max_iter=1).fit(X).encoder_, model().fit(X).decoder_
    before = [p.detach().clone() for p in encoder.parameters()]
    answer = choose_precision(
        encoder, decoder, torch.from_numpy(X), batch_size=64, loss="squared_error"
    )
    if not native_bfloat16("cpu"):
        assert answer == "float32"
    for a, b in zip(before, encoder.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("init", ["auto", "random"])
def test_bfloat16_training_ends_within_two_percent_of_float32(X, init):
    # Enough rows for the default path's early stopping to hold some out.
    X = np.tile(X, (3, 1)) + 0.01 * np.random.RandomState(1).randn(1200, 10)
    losses = {}
    for precision in ("float32", "bfloat16"):
        ae = fit(model(precision=precision, max_iter=5, init=init), X)
        assert ae.validation_scores_ is not None
        losses[precision] = ae.loss_curve_[-1]
    assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=0.02)


def test_resume_continues_in_the_arithmetic_chosen(monkeypatch, X):
    timings(monkeypatch, 1.0, 0.5)

    with pytest.warns(UserWarning, match="interrupted"):
        ae = model(precision="auto", callbacks=[interrupt_after_epoch(0)]).fit(X)
    assert ae.precision_ == "bfloat16"
    timings(monkeypatch, 1.0, 2.0)
    ae.set_params(callbacks=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae.resume(X)
    assert ae.precision_ == "bfloat16" and ae.n_iter_ == 3
