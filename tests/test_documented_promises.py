"""Promises of the user guide that no other test checked, one test each.

A comment above each test names the page and section of its promise. A promise the
code does not keep is written as the page states it and marked as a strict
expected failure, with the reason.
"""

import functools
import json
import warnings

import numpy as np
import pytest
import scipy.sparse
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

import skae
from skae import AutoencoderImputer, MLPAutoencoder, _imputer, _training
from skae._cli import main

import _helpers
from _helpers import (
    InterruptAt,
    fingerprint,
    interrupt_after_epoch,
    same_weights,
    weights,
)

# The defaults' epochs and early stopping: the promises are about them.
tiny = functools.partial(_helpers.tiny, max_iter=18, early_stopping="auto")


# dask.rst, "Inference on the workers": scatter the model once and map it over
# blocks.


# budget.rst (the list under its first section): skae compare --max-time gives
# --max-iter 1000 unless it is given.


class _Built(Exception):
    """Raised by a spy in place of training: the models are built, stop here."""


def spy_on_autoencoders(monkeypatch):
    """Record the parameters the command builds MLPAutoencoders with, then stop."""
    built = []

    def spy(**params):
        built.append(params)
        raise _Built

    monkeypatch.setattr(skae, "MLPAutoencoder", spy)
    return built


# promise: budget.rst / Quality per minute: a time budget
@pytest.mark.parametrize(
    "args, max_iter",
    [
        (["--max-time", "0.5"], 1000),
        (["--max-time", "0.5", "--max-iter", "7"], 7),
        (["--max-iter", "7"], 7),
    ],
)
def test_cli_max_time_implies_max_iter_1000_unless_given(
    tmp_path, monkeypatch, args, max_iter
):
    built = spy_on_autoencoders(monkeypatch)
    argv = ["compare", "--n-components", "3", "--train-size", "50"]
    argv += ["--test-size", "50", "--quiet", "--out", str(tmp_path / "r"), *args]
    with pytest.raises(_Built):
        main(argv)
    (params,) = built
    assert params["max_iter"] == max_iter
    assert params.get("max_time") == (0.5 if "--max-time" in args else None)
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def budgeted_report(tmp_path_factory):
    """One real, budgeted ``skae compare`` of two widths: 3 (<= 16) and 20."""
    out = tmp_path_factory.mktemp("cli") / "report"
    argv = ["compare", "--n-components", "3", "20", "--max-time", "0.05"]
    argv += ["--train-size", "100", "--test-size", "50", "--device", "auto"]
    argv += ["--quiet", "--out", str(out)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the budget is shorter than an epoch
        assert main(argv) == 0
    return json.loads((out / "results.json").read_text())


# promise: budget.rst / Quality per minute: a time budget
def test_cli_max_time_records_max_iter_1000_in_results_json(budgeted_report):
    assert "--max-time 0.05" in budgeted_report["command"]
    for name in ("AE-3", "AE-20"):
        params = budgeted_report["models"][name]
        assert params["max_iter"] == 1000 and params["max_time"] == 0.05
        # The budget, not the 1,000 epochs, ended the fit.
        assert 1 <= params["n_iter_"] < 1000


# failures.rst, "The skae compare command": results.json records every model's
# parameters, resolved (hidden_layer_sizes="auto" as the widths it chose).


# promise: failures.rst / The ``skae compare`` command
def test_cli_results_json_records_the_resolved_auto_widths(budgeted_report):
    models = budgeted_report["models"]
    # "auto": three hidden layers for codes up to 16 wide, two for wider ones.
    assert models["AE-3"]["hidden_layer_sizes"] == [512, 256, 128]
    assert models["AE-20"]["hidden_layer_sizes"] == [512, 256]
    for name in ("AE-3", "AE-20"):
        params = models[name]
        assert params["init"] == "pca"  # init="auto" with identity activations
        # "auto" with a PCA start, on 100 training rows: cross-validated.
        assert params["early_stopping"] == "auto"
        assert params["decided_by"] == "5-fold cross-validation"
        assert params["precision"] == "float32"


# promise: failures.rst / The ``skae compare`` command
def test_cli_results_json_records_the_resolved_auto_device(budgeted_report):
    for name in ("AE-3", "AE-20"):
        assert budgeted_report["models"][name]["device"] == "cpu"


# promise: failures.rst / The ``skae compare`` command
def test_cli_results_json_records_the_pca_models_solver_resolved(budgeted_report):
    for name in ("PCA-3", "PCA-20"):
        params = budgeted_report["models"][name]
        assert params["svd_solver"] in (
            "full",
            "covariance_eigh",
            "arpack",
            "randomized",
        )


# failures.rst, "Ctrl-C and resume": an interrupted partial_fit keeps the model
# it had before that epoch.


# promise: failures.rst / Ctrl-C and ``resume``
def test_an_interrupted_partial_fit_keeps_the_model_it_had_before(X_small, monkeypatch):
    ae = tiny(batch_size=50)
    ae.partial_fit(X_small)
    before_weights = weights(ae)
    n_iter, loss_curve = ae.n_iter_, list(ae.loss_curve_)
    codes = ae.transform(X_small)
    # 4 steps an epoch: Ctrl-C in the third step of the second call.
    InterruptAt(monkeypatch, 3)
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        ae.partial_fit(X_small)
    monkeypatch.undo()
    assert ae.n_iter_ == n_iter == 1
    assert ae.loss_curve_ == loss_curve
    assert same_weights(weights(ae), before_weights)
    assert_array_equal(ae.transform(X_small), codes)
    # Nothing of the cut epoch remains (optimizer, random state): the next
    # epoch is the one an uninterrupted second call would have run.
    ae.partial_fit(X_small)
    straight = tiny(batch_size=50).partial_fit(X_small).partial_fit(X_small)
    assert ae.loss_curve_ == straight.loss_curve_
    assert_array_equal(ae.transform(X_small), straight.transform(X_small))


# failures.rst, "Ctrl-C and resume": after Ctrl-C with early stopping, the model
# infers with the best epoch so far.


# promise: failures.rst / Ctrl-C and ``resume``
def test_after_ctrl_c_with_early_stopping_the_model_infers_with_the_best_epoch(
    X_small,
):
    trained = []

    def record_trained_weights(estimator, record):
        # The weights training continues from: this epoch's, not the best's.
        modules = {
            "encoder": estimator._state.encoder,
            "decoder": estimator._state.decoder,
        }
        trained.append(
            {
                f"{part}.{name}": tensor.detach().clone()
                for part, module in modules.items()
                for name, tensor in module.state_dict().items()
            }
        )

    def interrupt_after_a_worse_epoch(estimator, record):
        # Ctrl-C right after an epoch that validates worse than an earlier
        # one, so that the best epoch so far is not the last.
        scores = estimator.validation_scores_
        if len(scores) > 1 and scores[-1] < max(scores[:-1]):
            raise KeyboardInterrupt

    # A random start (no PCA candidate) and a high constant rate, whose
    # validation scores go down as well as up.
    ae = tiny(
        init="random",
        early_stopping=True,
        learning_rate="constant",
        learning_rate_init=0.1,
        batch_size=20,
        max_iter=30,
        callbacks=[record_trained_weights, interrupt_after_a_worse_epoch],
    )
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        ae.fit(X_small)
    last = ae.n_iter_ - 1
    assert len(trained) == len(ae.validation_scores_) == ae.n_iter_ < 30
    best = int(np.argmax(ae.validation_scores_))
    assert best < last
    assert ae.best_validation_score_ == ae.validation_scores_[best]
    inferring = weights(ae)
    assert same_weights(inferring, trained[best])
    assert not same_weights(inferring, trained[last])


# training.rst, "Continuing a fit" (and the resume example of failures.rst):
# resume refuses other data, the sample weights included.


# promise: training.rst / Continuing a fit
def test_resume_refuses_other_sample_weights_and_leaves_the_model_unchanged(
    X_small,
):
    weights = np.random.RandomState(1).rand(200) + 0.5
    ae = tiny(max_iter=4, early_stopping=True, callbacks=[interrupt_after_epoch(1)])
    with pytest.warns(UserWarning, match="interrupted"):
        ae.fit(X_small, sample_weight=weights)
    ae.set_params(callbacks=None)
    before = fingerprint(ae)
    for other in (weights[::-1], None, np.ones(200)):
        with pytest.raises(ValueError, match=r"and sample weights\) of the interr"):
            ae.resume(X_small, sample_weight=other)
        assert fingerprint(ae) == before
    ae.resume(X_small, sample_weight=weights)
    assert ae.n_iter_ == 4


# MLPAutoencoder's docstring (max_iter : int, default=18; tol : float,
# default=1e-5), and training.rst, "Stopping" and "Optimisation".


# promise: training.rst / Stopping
def test_defaults_are_max_iter_18_and_tol_1e_5(X_small):
    params = MLPAutoencoder().get_params()
    assert params["max_iter"] == 18
    assert params["tol"] == 1e-5
    # With the default max_iter, a fit the stopping rule cannot end runs 18
    # epochs and says so (on held-out rows: cross-validation, the default on
    # 200 rows, would choose the number of epochs itself).
    ae = tiny(n_iter_no_change=100, early_stopping=True)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(18\) reached"):
        ae.fit(X_small)
    assert ae.n_iter_ == 18 and len(ae.loss_curve_) == 18
    assert len(ae.validation_scores_) == 18


# sparse.rst, "What is not supported" (under "At scale"): n_components as a
# fraction is refused on sparse input.


# promise: sparse.rst / At scale
def test_a_fraction_n_components_is_refused_on_sparse_input(X_small):
    ae = MLPAutoencoder(0.9, hidden_layer_sizes=(8,), max_iter=1, random_state=0)
    message = (
        r"n_components=0\.9 searches the width by the variance of complete, "
        r"dense rows, but X is sparse: set n_components to an int"
    )
    with pytest.raises(ValueError, match=message):
        ae.fit(scipy.sparse.csr_matrix(X_small))
    with pytest.raises(NotFittedError):
        check_is_fitted(ae)
    assert ae.__sklearn_tags__().input_tags.sparse is False


# onnx.rst, "The autoencoder alone" (the outputs' names) and "What the graph
# computes" (to_onnx(..., target_opset=N)).


# promise: onnx.rst / The autoencoder alone
# promise: onnx.rst / What the graph computes
@pytest.mark.parametrize("target_opset", [13, 17])
def test_onnx_export_honours_target_opset_and_names_the_outputs(X_small, target_opset):
    pytest.importorskip("onnx")
    pytest.importorskip("skl2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from skae.onnx import to_onnx

    X = X_small.astype(np.float32)
    ae = tiny(max_iter=1).fit(X)
    for part, output in [("encoder", "X_transformed"), ("decoder", "X_reconstructed")]:
        model = to_onnx(ae, part=part, target_opset=target_opset)
        opsets = {entry.domain: entry.version for entry in model.opset_import}
        assert opsets.get("", opsets.get("ai.onnx")) == target_opset
        assert [i.name for i in model.graph.input] == ["X"]
        assert [o.name for o in model.graph.output] == [output]
    model = ae.to_onnx(target_opset=target_opset)
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    assert [o.name for o in session.get_outputs()] == ["X_transformed"]
    (codes,) = session.run(None, {"X": X})
    np.testing.assert_allclose(codes, ae.transform(X), rtol=1e-5, atol=1e-5)


# missing.rst, "AutoencoderImputer": fit hides entries of up to 2,000 rows.


# promise: missing.rst / AutoencoderImputer
def test_imputer_hides_entries_of_at_most_2000_rows(monkeypatch):
    assert _imputer.PROBE_ROWS == 2000
    probes = []
    real = _imputer._Probe.hide.__func__

    def spy(cls, X, rng):
        probes.append((X.copy(), real(cls, X, rng)))
        return probes[-1][1]

    monkeypatch.setattr(_imputer._Probe, "hide", classmethod(spy))
    rng = np.random.RandomState(0)
    X = rng.rand(2100, 3) @ rng.rand(3, 8)
    X[rng.rand(*X.shape) < 0.1] = np.nan
    autoencoder = MLPAutoencoder(
        2, hidden_layer_sizes=(), max_iter=1, early_stopping=False
    )
    AutoencoderImputer(autoencoder=autoencoder, random_state=0).fit(X)
    ((given, probe),) = probes
    newly_hidden = np.isnan(probe.X) & ~np.isnan(given)
    rows_with_hidden = np.flatnonzero(newly_hidden.any(axis=1))
    assert probe.hidden.shape == (2000, 8)
    assert set(rows_with_hidden) <= set(probe.rows[:2000])
    # About a tenth of the observed entries of those rows, none of the others.
    assert 1300 < newly_hidden.sum() < 1600
    assert len(rows_with_hidden) > 900


# missing.rst, "AutoencoderImputer": the default autoencoder trains with
# noise={"missing": 0.2}.


# promise: missing.rst / AutoencoderImputer
def test_imputer_default_autoencoder_trains_with_missing_noise(monkeypatch):
    # Two epochs instead of the default ~150, and one small hidden layer: the
    # noise the imputer asks for depends on neither.
    real_autoencoder = AutoencoderImputer._autoencoder

    def smaller(self, shape, width):
        autoencoder = real_autoencoder(self, shape, width)
        return autoencoder.set_params(hidden_layer_sizes=(8,), max_iter=2)

    monkeypatch.setattr(AutoencoderImputer, "_autoencoder", smaller)
    noises = []
    real = _training.corrupt

    def spy(X, noise, generator):
        noises.append(dict(noise))
        return real(X, noise, generator)

    monkeypatch.setattr(_training, "corrupt", spy)
    rng = np.random.RandomState(0)
    X = rng.rand(60, 2) @ rng.rand(2, 6)
    X[::7, 3] = np.nan
    imputer = AutoencoderImputer(n_components=2, random_state=0).fit(X)
    assert imputer.autoencoder_.get_params()["noise"] == {"missing": 0.2}
    assert noises and all(noise.get("missing") == 0.2 for noise in noises)
    assert all(
        noise.get("gaussian", 0) == noise.get("mask", 0) == 0 for noise in noises
    )
