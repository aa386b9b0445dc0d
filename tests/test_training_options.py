"""Early stopping, partial_fit, warm start, schedules, noise, devices, weights."""

import functools
import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from skae import MLPAutoencoder, _training
from skae._torch_utils import data_device
from skae._training import make_optimizer, make_scheduler

import _helpers
from _helpers import InterruptAt, interrupt_after_epoch, same_weights, weights

# Constant rate: a fit split in pieces equals one fit only without a whole-fit
# schedule (resume is the tool for that, tested below).
tiny = functools.partial(
    _helpers.tiny, hidden_layer_sizes=(16,), max_iter=5, learning_rate="constant"
)


# Early stopping and the stopping rule


def test_early_stopping_falls_back_to_the_pca_start(X_small):
    # Too high a rate: every epoch validates worse than the PCA start, which is
    # PCA of the training rows (the same split: the same random_state).
    start = tiny(max_iter=1, learning_rate_init=1e-12, early_stopping=True)
    start.fit(X_small)
    ae = tiny(early_stopping=True, learning_rate_init=0.05, n_iter_no_change=2)
    ae.fit(X_small)
    assert max(ae.validation_scores_) < ae.best_validation_score_
    assert_allclose(ae.reconstruct(X_small), start.reconstruct(X_small), atol=1e-5)


def test_early_stopping_auto_holds_out_data(X_small):
    X = np.tile(X_small, (5, 1))
    auto = {"early_stopping": "auto"}
    # A PCA start holds out rows at any size: they decide whether training
    # beat PCA. A random start from 1,000 samples on.
    assert tiny(**auto).fit(X[:20]).validation_scores_ is not None
    assert tiny(**auto, init="random").fit(X).validation_scores_ is not None
    assert tiny(**auto, init="random").fit(X[:999]).validation_scores_ is None


# promise: training.rst / Stopping
def test_early_stopping_keeps_the_best_epoch(X_small):
    snapshots = []
    ae = tiny(
        init="random",
        activation="relu",
        early_stopping=True,
        n_iter_no_change=3,
        max_iter=200,
        learning_rate_init=0.05,
        callbacks=[lambda est, record: snapshots.append(weights(est))],
    ).fit(X_small)
    assert ae.n_iter_ < 200
    assert len(ae.validation_scores_) == ae.n_iter_ == len(snapshots)
    assert len(ae.validation_loss_curve_) == ae.n_iter_
    assert ae.best_validation_score_ == max(ae.validation_scores_)
    assert ae.best_loss_ is None
    best_epoch = int(np.argmax(ae.validation_scores_))
    assert best_epoch < ae.n_iter_ - 1
    assert same_weights(weights(ae), snapshots[best_epoch])
    assert all(score < 0 for score in ae.validation_scores_)


# promise: training.rst / Stopping
def test_training_loss_rule_stops_after_n_iter_no_change(X_small):
    ae = tiny(tol=10.0, n_iter_no_change=2, max_iter=50)
    with warnings_as_errors(ConvergenceWarning):
        ae.fit(X_small)
    # Epoch 1 improves on infinity; epochs 2, 3, 4 do not improve by 10.
    assert ae.n_iter_ == 4
    assert ae.best_loss_ == min(ae.loss_curve_)
    assert ae.validation_scores_ is None and ae.best_validation_score_ is None


def test_convergence_warning_when_max_iter_ends_training(X_small):
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        tiny(max_iter=3).fit(X_small)


def test_early_stopping_needs_samples_on_both_sides():
    with pytest.raises(ValueError, match="needs at least one training and one"):
        tiny(early_stopping=True, n_components=1).fit(np.ones((1, 3)))


# promise: training.rst / Watching it
def test_verbose_reports_validation_loss(X_small, capsys):
    tiny(early_stopping=True, max_iter=2, verbose=1).fit(X_small)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Epoch 1, loss = ")
    assert "validation loss = " in lines[0]


def test_verbose_two_shows_a_progress_bar(X_small, capsys):
    tiny(max_iter=1, verbose=2, batch_size=20).fit(X_small)
    captured = capsys.readouterr()
    assert "batch" in captured.err
    assert captured.out.startswith("Epoch 1, loss = ")


# partial_fit and warm start


# promise: training.rst / Continuing a fit
def test_partial_fit_equals_fit_epoch_by_epoch(X_small):
    straight = tiny(max_iter=3, shuffle=False).fit(X_small)
    stepwise = tiny(shuffle=False)
    for _ in range(3):
        stepwise.partial_fit(X_small)
    assert stepwise.n_iter_ == 3
    assert stepwise.loss_curve_ == straight.loss_curve_
    assert_array_equal(stepwise.transform(X_small), straight.transform(X_small))


def test_partial_fit_keeps_the_optimizer_state(X_small):
    def steps(ae):
        optimizer = ae._state.optimizer
        return optimizer.state[next(ae.encoder_.parameters())]["step"].item()

    ae = tiny().partial_fit(X_small)
    first = steps(ae)
    ae.partial_fit(X_small)
    assert steps(ae) == 2 * first


def test_partial_fit_with_other_features_raises_and_keeps_the_model(X_small):
    ae = tiny().partial_fit(X_small)
    before = weights(ae)
    with pytest.raises(ValueError, match="X has 9 features"):
        ae.partial_fit(X_small[:, :9])
    assert same_weights(before, weights(ae))
    assert ae.n_iter_ == 1


def test_partial_fit_chunks_stream_a_memmap(X_small, tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, X_small.astype(np.float32))
    X = np.load(path, mmap_mode="r")
    ae = tiny(n_components=3)
    for start in range(0, len(X), 50):
        ae.partial_fit(X[start : start + 50])
    assert ae.n_iter_ == 4
    assert ae.transform(X).shape == (200, 3)


# promise: training.rst / Continuing a fit
def test_warm_start_continues_bit_for_bit(X_small):
    straight = tiny(max_iter=5).fit(X_small)
    resumed = tiny(max_iter=2).fit(X_small)
    resumed.set_params(warm_start=True, max_iter=3).fit(X_small)
    assert resumed.n_iter_ == 5
    assert resumed.loss_curve_ == straight.loss_curve_
    assert_array_equal(resumed.transform(X_small), straight.transform(X_small))


def test_without_warm_start_fit_starts_afresh(X_small):
    ae = tiny(max_iter=2).fit(X_small)
    first = ae.loss_curve_
    ae.fit(X_small)
    assert ae.loss_curve_ == first and ae.n_iter_ == 2


def test_warm_start_refuses_a_changed_architecture(X_small):
    ae = tiny(max_iter=2).fit(X_small)
    before = weights(ae)
    with pytest.raises(ValueError, match="n_components=3 differs from 2"):
        ae.set_params(warm_start=True, n_components=3).fit(X_small)
    assert same_weights(before, weights(ae))


def test_warm_start_with_a_new_solver_starts_a_new_optimizer(X_small):
    ae = tiny(max_iter=2).fit(X_small)
    ae.set_params(warm_start=True, solver="sgd").fit(X_small)
    assert isinstance(ae._state.optimizer, torch.optim.SGD)
    assert ae.n_iter_ == 4


# Learning-rate schedules


# promise: training.rst / Optimisation
@pytest.mark.parametrize("schedule", ["cosine", "one_cycle"])
def test_schedules_change_the_rate_every_step(schedule):
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = make_optimizer([parameter], "adam", 0.1)
    scheduler = make_scheduler(optimizer, schedule, 0.1, total_steps=100)
    rates = []
    for _ in range(100):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert max(rates) <= 0.1 + 1e-12
    assert rates[-1] < 1e-3
    if schedule == "one_cycle":
        assert np.argmax(rates) > 10  # warms up first
    else:
        assert np.all(np.diff(rates) <= 0)


def test_constant_schedule_resets_the_rate():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = make_optimizer([parameter], "adam", 0.1)
    optimizer.param_groups[0]["lr"] = 1e-6
    assert make_scheduler(optimizer, "constant", 0.1, 10) is None
    assert optimizer.param_groups[0]["lr"] == 0.1


@pytest.mark.parametrize("schedule", ["cosine", "one_cycle"])
def test_fit_with_a_schedule(X_small, schedule):
    params = dict(init="random", learning_rate_init=0.02, max_iter=10)
    ae = tiny(learning_rate=schedule, **params).fit(X_small)
    constant = tiny(**params).fit(X_small)
    assert ae.loss_curve_ != constant.loss_curve_
    assert ae.loss_curve_[-1] < ae.loss_curve_[0]
    assert ae._state.optimizer.param_groups[0]["lr"] < 1e-3


# Denoising


def test_noise_corrupts_inputs_only_during_training(X_small):
    clean = tiny(max_iter=10).fit(X_small)
    noisy = tiny(max_iter=10, noise=0.3).fit(X_small)
    assert noisy.loss_curve_ != clean.loss_curve_
    assert noisy.loss_curve_[-1] > clean.loss_curve_[-1]
    # Inference is deterministic: no noise outside training.
    assert_array_equal(noisy.transform(X_small), noisy.transform(X_small))
    again = tiny(max_iter=10, noise=0.3).fit(X_small)
    assert again.loss_curve_ == noisy.loss_curve_


def test_corrupt_masks_the_requested_fraction():
    generator = torch.Generator().manual_seed(0)
    X = torch.ones(200, 50)
    masked = _training.corrupt(X, {"mask": 0.3}, generator)
    assert abs(float((masked == 0).float().mean()) - 0.3) < 0.02
    assert torch.equal(X, torch.ones(200, 50))
    gaussian = _training.corrupt(X, {"gaussian": 0.5}, generator)
    assert abs(float((gaussian - 1).std()) - 0.5) < 0.02


def test_mask_and_gaussian_noise_together_corrupt_inputs_never_targets(
    X_small, monkeypatch
):
    seen = []
    real = _training.reconstruction_loss

    def spy(encoder, decoder, X_input, X_target, *args, **kwargs):
        seen.append((X_input.detach().clone(), X_target.detach().clone()))
        return real(encoder, decoder, X_input, X_target, *args, **kwargs)

    monkeypatch.setattr(_training, "reconstruction_loss", spy)
    ae = tiny(noise={"gaussian": 0.1, "mask": 0.2}, shuffle=False).fit(X_small)
    assert np.isfinite(ae.transform(X_small)).all()
    inputs, targets = seen[0]
    # The targets are the rows themselves, bit for bit.
    rows = torch.from_numpy(X_small[: len(targets)].astype(np.float32))
    assert torch.equal(targets, rows)
    # The inputs: a fifth masked to exactly zero, the rest moved by the noise.
    zero = inputs == 0
    assert 0.1 < float(zero.float().mean()) < 0.3
    assert float((inputs - targets)[~zero].std()) == pytest.approx(0.1, rel=0.2)


@pytest.mark.parametrize(
    "noise, match",
    [
        ({"salt": 0.1}, "unknown keys"),
        ({"mask": 1.0}, r"must be in \[0, 1\)"),
        ({"gaussian": -1}, "must be a float >= 0"),
        (-0.5, "noise"),
    ],
)
def test_invalid_noise(X_small, noise, match):
    with pytest.raises(ValueError, match=match):
        tiny(noise=noise).fit(X_small)


# Devices and pickling


# promise: training.rst / Devices and precision
def test_model_fitted_on_a_gpu_loads_on_a_cpu_only_machine(X_small, monkeypatch):
    ae = tiny().fit(X_small)
    expected = ae.transform(X_small)
    # Pretend the model was fitted on a GPU, then load it where CUDA is absent.
    ae._state.device = torch.device("cuda", 0)
    payload = pickle.dumps(ae)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="fitted on cuda:0.*mapped to the CPU"):
        restored = pickle.loads(payload)
    assert restored._device == torch.device("cpu")
    assert next(restored.encoder_.parameters()).device.type == "cpu"
    assert_array_equal(restored.transform(X_small), expected)
    restored.partial_fit(X_small)  # and it trains on
    assert restored.n_iter_ == 6


# promise: saving.rst / Pickle
def test_pickle_keeps_the_optimizer_state(X_small):
    straight = tiny(max_iter=4, shuffle=False).fit(X_small)
    half = tiny(max_iter=2, shuffle=False).fit(X_small)
    resumed = pickle.loads(pickle.dumps(half))
    resumed.set_params(warm_start=True, max_iter=2).fit(X_small)
    assert resumed.loss_curve_ == straight.loss_curve_


# Sample weights


# With init="pca", Adam's normalised first steps amplify float32 rounding near the
# PCA optimum, so equivalence is checked from a random start and, for the PCA
# start, on the basis itself (test_modules.py).


def test_zero_weights_equal_leaving_samples_out(X_small):
    params = dict(batch_size=1000, max_iter=5, init="random")
    weights = np.r_[np.ones(100), np.zeros(100)]
    weighted = tiny(**params).fit(X_small, sample_weight=weights)
    subset = tiny(**params).fit(X_small[:100])
    assert_allclose(weighted.transform(X_small), subset.transform(X_small), atol=1e-5)


# promise: training.rst / Sample weights
def test_integer_weights_equal_repeated_samples(X_small):
    params = dict(batch_size=1000, max_iter=5, init="random")
    weights = np.arange(200) % 3
    weighted = tiny(**params).fit(X_small, sample_weight=weights)
    repeated = tiny(**params).fit(np.repeat(X_small, weights, axis=0))
    assert_allclose(weighted.transform(X_small), repeated.transform(X_small), atol=1e-5)


def test_weights_change_the_model(X_small):
    plain = tiny().fit(X_small)
    weighted = tiny().fit(X_small, sample_weight=np.linspace(0.1, 3, 200))
    assert not np.allclose(plain.transform(X_small), weighted.transform(X_small))


@pytest.mark.parametrize(
    "weights, match",
    [
        (-np.ones(200), "Negative values"),
        (np.zeros(200), "at least one non-zero"),
        (np.ones(10), r"sample_weight.shape == \(10,\)"),
    ],
)
def test_invalid_sample_weight(X_small, weights, match):
    with pytest.raises(ValueError, match=match):
        tiny().fit(X_small, sample_weight=weights)


# Interrupts


def test_ctrl_c_at_an_epoch_boundary_keeps_the_finished_epochs(X_small):
    snapshots = []
    ae = tiny(
        max_iter=10,
        callbacks=[
            lambda est, record: snapshots.append(weights(est)),
            interrupt_after_epoch(1),
        ],
    )
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        ae.fit(X_small)
    assert ae.n_iter_ == 2 and len(ae.loss_curve_) == 2
    assert same_weights(weights(ae), snapshots[1])
    assert np.isfinite(ae.transform(X_small)).all()


def test_ctrl_c_mid_batch_restores_the_last_finished_epoch(X_small, monkeypatch):
    snapshots = []
    InterruptAt(monkeypatch, 25)  # the 5th of 10 batches of the third epoch
    ae = tiny(
        max_iter=10,
        batch_size=20,
        callbacks=[lambda est, record: snapshots.append(weights(est))],
    )
    with pytest.warns(UserWarning, match="Training interrupted by user"):
        ae.fit(X_small)
    assert ae.n_iter_ == 2
    assert same_weights(weights(ae), snapshots[1])


# Determinism


# promise: training.rst / Reproducibility
def test_refits_are_bit_identical_with_every_option(X_small):
    params = dict(
        early_stopping=True,
        noise={"gaussian": 0.1, "mask": 0.1},
        learning_rate="one_cycle",
        max_iter=6,
        random_state=3,
    )
    first = tiny(**params).fit(X_small)
    second = tiny(**params).fit(X_small)
    assert first.loss_curve_ == second.loss_curve_
    assert first.validation_scores_ == second.validation_scores_
    assert_array_equal(first.transform(X_small), second.transform(X_small))


class warnings_as_errors:
    def __init__(self, category):
        self.category = category

    def __enter__(self):
        import warnings

        self.context = warnings.catch_warnings()
        self.context.__enter__()
        warnings.simplefilter("error", self.category)

    def __exit__(self, *exc):
        return self.context.__exit__(*exc)


# Reduced precision


def test_bfloat16_training_tracks_float32(X_small):
    params = dict(max_iter=5, init="random", learning_rate_init=0.01)
    full = tiny(**params).fit(X_small)
    half = tiny(precision="bfloat16", **params).fit(X_small)
    assert half.loss_curve_ != full.loss_curve_  # bfloat16 really ran
    np.testing.assert_allclose(half.loss_curve_, full.loss_curve_, rtol=0.05)
    assert half.transform(X_small).dtype == X_small.dtype
    assert half.encoder_[0].weight.dtype == torch.float32


def test_unknown_precision_is_refused(X_small):
    with pytest.raises(ValueError, match="'precision' parameter"):
        tiny(precision="fp8").fit(X_small)


@pytest.mark.parametrize(("n_bytes", "expected"), [(10**9, "cuda"), (3 * 10**9, "cpu")])
def test_training_data_lives_on_the_gpu_when_it_fits(monkeypatch, n_bytes, expected):
    # 4 GB free: up to half of it holds the data, the rest the model and batches.
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (4 * 10**9, 8e9))
    assert data_device(n_bytes, "cuda").type == expected
    assert data_device(n_bytes, "cpu").type == "cpu"


# promise: training.rst / Optimisation
# promise: vs_pca.rst / A start that only improves
@pytest.mark.parametrize("schedule", ["constant", "cosine", "one_cycle"])
def test_the_pca_paths_train_at_a_tenth_of_the_rate(schedule):
    X = np.random.RandomState(0).rand(200, 6).astype(np.float32)
    rates = []

    def record(estimator, record):
        groups = estimator._state.optimizer.param_groups
        rates.append([group["lr"] for group in groups])

    MLPAutoencoder(
        2,
        hidden_layer_sizes=(8,),
        learning_rate=schedule,
        max_iter=3,
        early_stopping=False,
        random_state=0,
        callbacks=[record],
    ).fit(X)
    # One record per epoch, each with the two groups: the others and the PCA paths.
    assert len(rates) == 3
    assert all(len(pair) == 2 for pair in rates)
    for full, slow in rates:
        assert slow == pytest.approx(full * _training.PCA_PATH_LR_SCALE)
    random_start = MLPAutoencoder(
        2, hidden_layer_sizes=(8,), init="random", max_iter=1
    ).fit(X)
    assert len(random_start._state.optimizer.param_groups) == 1
