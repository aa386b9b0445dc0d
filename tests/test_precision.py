"""precision="auto" (the default): bfloat16 where the hardware has it, by rule.

The hardware is replaced by a fixed answer where a test needs one: these tests
pass on CPUs with and without native bfloat16.
"""

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import skae
from skae import MLPAutoencoder, _precision
from skae._precision import AUTO_BFLOAT16_MIN_ROWS, choose_precision, native_bfloat16

from _helpers import interrupt_after_epoch


@pytest.fixture
def X():
    rng = np.random.RandomState(0)
    codes = rng.randn(400, 3)
    return (codes @ rng.randn(3, 10) + 0.1 * rng.randn(400, 10)).astype(np.float32)


def hardware(monkeypatch, native, min_rows=100):
    """Make the CPU have (or lack) native bfloat16, and "large" start at min_rows."""
    monkeypatch.setattr(_precision, "native_bfloat16", lambda device: native)
    monkeypatch.setattr(_precision, "AUTO_BFLOAT16_MIN_ROWS", min_rows)


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


def test_auto_is_the_default():
    assert MLPAutoencoder().precision == "auto"


# promise: budget.rst / bfloat16 where it is native: ``precision="auto"``
@pytest.mark.parametrize(
    ("native", "min_rows", "expected"),
    [
        (False, 100, "float32"),
        (True, 100, "bfloat16"),
        # The rows fit is given decide (400), not those it trains on.
        (True, 400, "bfloat16"),
        (True, 401, "float32"),
    ],
)
def test_auto_is_bfloat16_on_native_hardware_for_large_fits(
    monkeypatch, X, native, min_rows, expected
):
    hardware(monkeypatch, native, min_rows)
    assert fit(model(), X).precision_ == expected


def test_the_default_threshold_is_ten_thousand_rows():
    assert AUTO_BFLOAT16_MIN_ROWS == 10_000
    expected = "bfloat16" if native_bfloat16("cpu") else "float32"
    assert choose_precision("cpu", 10_000) == expected
    assert choose_precision("cpu", 9_999) == "float32"


# promise: budget.rst / bfloat16 where it is native: ``precision="auto"``
def test_auto_gives_one_model_per_random_state(monkeypatch, X):
    # Decided by rule, not by timing: two fits are the same fit.
    hardware(monkeypatch, True)
    first, second = fit(model(), X), fit(model(), X)
    assert first.precision_ == second.precision_ == "bfloat16"
    assert_array_equal(first.transform(X), second.transform(X))
    assert first.loss_curve_ == second.loss_curve_


def test_native_bfloat16_agrees_with_the_cpu_flags():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo to read the flags from")
    flags = set(re.findall(r"\b(amx_tile|avx512_bf16)\b", cpuinfo.read_text()))
    assert native_bfloat16("cpu") == bool(flags)


def test_the_choice_is_recorded_kept_and_saved(monkeypatch, X, tmp_path):
    hardware(monkeypatch, True)
    ae = fit(model(warm_start=True), X)
    assert ae.precision_ == "bfloat16"
    # A warm start continues in the arithmetic chosen, whatever the rule says now.
    hardware(monkeypatch, False)
    fit(ae, X)
    assert ae.precision_ == "bfloat16"
    ae.save(tmp_path / "m.skae")
    assert skae.load(tmp_path / "m.skae").precision_ == "bfloat16"
    streamed = model(early_stopping=False)
    streamed.partial_fit(X)
    hardware(monkeypatch, True)
    streamed.partial_fit(X)
    assert streamed.precision_ == "float32"


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_fixed_precision_is_what_precision_reports(monkeypatch, X, precision):
    hardware(monkeypatch, precision == "float32")
    assert fit(model(precision=precision, max_iter=1), X).precision_ == precision


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
    hardware(monkeypatch, True)
    with pytest.warns(UserWarning, match="interrupted"):
        ae = model(early_stopping=False, callbacks=[interrupt_after_epoch(0)]).fit(X)
    assert ae.precision_ == "bfloat16"
    hardware(monkeypatch, False)
    ae.set_params(callbacks=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae.resume(X)
    assert ae.precision_ == "bfloat16" and ae.n_iter_ == 3
