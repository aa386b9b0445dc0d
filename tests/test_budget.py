"""max_time: a time budget that sizes the epochs and the schedule of a fit.

No test here reads the wall clock: the budget's clock is replaced by one that
advances one second each time it is read, so every fit sees the same times.
"""

import types
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning

import skae
from skae import MLPAutoencoder, _budget
from skae._budget import TimeBudget

from _helpers import InterruptAt, interrupt_after_epoch, same_weights, weights

MAX_ITER = 40


class FakeClock:
    """A perf_counter that advances `step` seconds at every reading."""

    def __init__(self, step=1.0):
        self.now = 0.0
        self.step = step

    def __call__(self):
        self.now += self.step
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    for module in ("_budget", "_base", "_trainer", "_sizing", "_crossval"):
        monkeypatch.setattr(
            getattr(skae, module), "time", types.SimpleNamespace(perf_counter=fake)
        )
    return fake


@pytest.fixture
def X():
    return np.random.RandomState(0).rand(300, 12).astype(np.float32)


def budgeted(**params):
    """The defaults (PCA start, one-cycle, early stopping) with a budget.

    Early stopping on the held-out rows: on 300 rows the defaults would
    cross-validate, six runs sharing the budget (tested at the end).
    """
    defaults = {
        "n_components": 3,
        "hidden_layer_sizes": (16,),
        "max_iter": MAX_ITER,
        "random_state": 0,
        "early_stopping": True,
    }
    return MLPAutoencoder(**{**defaults, **params})


def final_lr_of_one_cycle(steps):
    """The rate a one-cycle schedule planned for `steps` steps ends at."""
    parameter = torch.nn.Parameter(torch.zeros(1))
    planned = torch.optim.lr_scheduler.OneCycleLR(
        torch.optim.Adam([parameter]), max_lr=0.002, total_steps=steps
    )
    for _ in range(steps):
        planned.optimizer.step()
        planned.step()
    return planned.get_last_lr()[0]


def last_lr(estimator):
    return estimator._state.optimizer.param_groups[0]["lr"]


# promise: budget.rst / Quality per minute: a time budget
# promise: budget.rst / What a minute buys
def test_the_budget_sizes_the_epochs_and_ends_the_schedule(clock, X):
    with pytest.warns(ConvergenceWarning, match="Time budget"):
        ae = budgeted(max_time=30, tol=0).fit(X)
    assert 1 < ae.n_iter_ < MAX_ITER
    # Within one epoch of the budget: an epoch reads the clock twice.
    pace = ae.fit_time_ / ae.n_iter_
    assert ae.fit_time_ <= 30 + pace
    # The one-cycle schedule was shrunk to the epochs run: it ended where one
    # planned for them from the start ends (270 training rows, 2 steps/epoch).
    assert last_lr(ae) == pytest.approx(final_lr_of_one_cycle(ae.n_iter_ * 2))
    assert last_lr(ae) < 0.002 / 100


def test_a_budget_that_is_not_binding_changes_nothing(X):
    plain = budgeted(max_iter=5).fit(X)
    roomy = budgeted(max_iter=5, max_time=1e9).fit(X)
    assert roomy.n_iter_ == plain.n_iter_ == 5
    assert same_weights(weights(plain), weights(roomy))


# promise: budget.rst / Quality per minute: a time budget
def test_a_budget_shorter_than_one_epoch_trains_one_and_warns(clock, X):
    with pytest.warns(UserWarning, match="shorter than the start and one epoch"):
        ae = budgeted(max_time=0.5).fit(X)
    assert ae.n_iter_ == 1
    assert np.isfinite(ae.transform(X)).all()


@pytest.mark.parametrize("max_time", [0, -1, float("nan"), float("inf"), "60"])
def test_invalid_budgets_are_refused_and_keep_the_model(X, max_time):
    ae = budgeted(max_iter=2).fit(X)
    before = ae.transform(X)
    ae.set_params(max_time=max_time)
    with pytest.raises(ValueError, match="max_time"):
        ae.fit(X)
    assert_array_equal(ae.transform(X), before)


def test_resume_finishes_the_plan_a_budgeted_fit_made(clock, X, tmp_path):
    with pytest.warns(UserWarning, match="interrupted"):
        cut = budgeted(max_time=30, tol=0, callbacks=[interrupt_after_epoch(2)]).fit(X)
    planned = cut._state.plan.last_epoch
    assert cut.n_iter_ == 3 < planned < MAX_ITER
    cut.set_params(callbacks=None).save(tmp_path / "cut.skae")
    loaded = skae.load(tmp_path / "cut.skae")
    # The clock now runs ten times slower: a new budget would afford 3 epochs.
    clock.step = 10.0
    for resumed in (cut, loaded):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            resumed.resume(X)
        assert resumed.n_iter_ == planned
        assert last_lr(resumed) == pytest.approx(final_lr_of_one_cycle(planned * 2))
    assert same_weights(weights(cut), weights(loaded))


def test_a_budgeted_fit_cut_short_in_its_first_epoch_sizes_itself_on_resume(
    clock, X, tmp_path
):
    with pytest.MonkeyPatch.context() as patch:
        # Ctrl-C at the second optimisation step, in the first epoch.
        InterruptAt(patch, 2)
        with pytest.warns(UserWarning, match="interrupted"):
            ae = budgeted(max_time=30, tol=0).fit(X)
    assert ae.n_iter_ == 0
    ae.save(tmp_path / "cut.skae")
    loaded = skae.load(tmp_path / "cut.skae")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        loaded.resume(X)
    assert 1 < loaded.n_iter_ < MAX_ITER


def test_resume_refuses_a_changed_budget(X):
    with pytest.warns(UserWarning, match="interrupted"):
        ae = budgeted(max_time=1e9, callbacks=[interrupt_after_epoch(1)]).fit(X)
    ae.set_params(max_time=5)
    with pytest.raises(ValueError, match="max_time=5"):
        ae.resume(X)


def test_warm_start_gives_each_fit_its_own_budget(clock, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae = budgeted(max_time=20, warm_start=True, early_stopping=False).fit(X)
        first = ae.n_iter_
        ae.fit(X)
    assert first < MAX_ITER and first < ae.n_iter_ < 2 * MAX_ITER


def test_partial_fit_ignores_the_budget(clock, X):
    ae = budgeted(max_time=0.5, early_stopping="auto")
    ae.partial_fit(X)
    ae.partial_fit(X)
    assert ae.n_iter_ == 2


def test_a_width_search_shares_the_budget(clock, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae = budgeted(n_components=0.8, max_time=40).fit(X)
    tried = ae.n_components_search_
    assert len(tried) >= 2
    assert all(entry["n_iter"] < MAX_ITER for entry in tried)
    assert sum(entry["seconds"] for entry in tried) <= 40 + max(
        entry["seconds"] for entry in tried
    )


def test_time_budget_unit():
    fake = FakeClock(step=0.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_budget, "time", types.SimpleNamespace(perf_counter=fake))
        budget = TimeBudget(10.0, started=0.0)
        fake.now = 1.0
        budget.start(n_iter=4, cap=100)
        fake.now = 3.0
        # One epoch in 2 s, 7 s left: 3 more epochs.
        assert budget.last_epoch(5) == 8
        fake.now = 4.0
        # Faster since: 2 epochs in 3 s, 6 s left: 4 more (the plan grows).
        assert budget.last_epoch(6) == 10
        budget.cap = 7
        assert budget.last_epoch(6) == 7
        fake.now = 20.0
        # Past the deadline: stop, but keep the epochs that ran.
        assert budget.last_epoch(6) == 6


def test_early_stopping_still_ends_a_budgeted_fit(clock, X):
    # A rule that fires after one epoch without a gain of 1e9: its first
    # chance once the one-cycle warm-up (30% of the plan) is over.
    ae = budgeted(max_time=1e6, tol=1e9, n_iter_no_change=1).fit(X)
    assert 0.3 * MAX_ITER <= ae.n_iter_ < 0.3 * MAX_ITER + 3


def test_patience_waits_for_the_one_cycle_warm_up(X):
    # 200 planned epochs: the warm-up's first 60 run at a tiny rising rate, and
    # ten epochs without a gain of tol must not end the fit then.
    ae = budgeted(max_iter=200, tol=1e-2, n_iter_no_change=3).fit(X)
    assert ae.n_iter_ > 0.3 * 200


@pytest.mark.parametrize("max_time", [1e306, 2.0**1023, 10**400])
def test_a_huge_budget_is_no_budget_or_refused(clock, X, max_time):
    ae = budgeted(max_iter=3, max_time=max_time)
    if max_time == 10**400:
        with pytest.raises(ValueError, match="max_time"):
            ae.fit(X)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            assert ae.fit(X).n_iter_ == 3


def test_a_bool_is_not_a_budget(X):
    with pytest.raises(ValueError, match="max_time=True"):
        budgeted(max_time=True).fit(X)


def test_numpy_scalars_save_mid_fit(X, tmp_path):
    ae = budgeted(
        max_time=np.float32(1e6),
        learning_rate_init=np.float32(0.002),
        callbacks=[interrupt_after_epoch(1)],
    )
    with pytest.warns(UserWarning, match="interrupted"):
        ae.fit(X)
    ae.set_params(callbacks=None).save(tmp_path / "m.skae")
    loaded = skae.load(tmp_path / "m.skae")
    assert loaded._state.plan.params["max_time"] == 1e6


def test_cross_validation_shares_the_budget_among_its_runs(clock, X):
    # Six trainer runs (five folds and the final fit) within one budget: each
    # gets a share of the time left, and the whole fit ends near it.
    seen = []
    real = skae._trainer.Trainer.fit

    def spy(self, *args, **kwargs):
        seen.append(self.config.max_time)
        return real(self, *args, **kwargs)

    skae._trainer.Trainer.fit = spy
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ae = budgeted(early_stopping="auto", max_time=600.0).fit(X)
    finally:
        skae._trainer.Trainer.fit = real
    assert len(seen) == 6
    # The first fold gets a sixth of the time; each later run, its part of
    # what is left, so the fit ends within the budget.
    assert seen[0] <= 600.0 / 6
    assert ae.fit_time_ <= 600.0
    assert ae.validation_scores_ is not None
