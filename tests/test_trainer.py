"""The trainer on its own: a FitConfig and a RowSource in, a TrainingState out."""

import ast
import pathlib
import time
import warnings

import numpy as np
import pytest
import torch

import skae
from skae._config import FitConfig
from skae._crossval import fit_new
from skae._rows import RowSource
from skae._sizing import search_width
from skae._trainer import Callbacks, Trainer

from _helpers import tiny

X = np.random.RandomState(0).rand(120, 10).astype(np.float32)


def config_of(estimator, X=X):
    """The configuration `estimator` would hand to the trainer for X."""
    return estimator._fit_config(X)


def module_weights(state):
    return {
        f"{index}.{name}": tensor.detach().clone()
        for index, module in enumerate(state.modules)
        for name, tensor in module.state_dict().items()
    }


def same(first, second):
    return first.keys() == second.keys() and all(
        torch.equal(first[name], second[name]) for name in first
    )


class Recorder(Callbacks):
    """Records what the trainer reports; optionally stops or fails at an epoch."""

    def __init__(self, stop_at=None, fail_at=None, interrupt_at=None):
        self.published, self.epochs, self.restored = [], [], []
        self.stop_at, self.fail_at, self.interrupt_at = stop_at, fail_at, interrupt_at

    def publish(self, state):
        self.published.append(state.history.n_iter)

    def save(self):
        return "saved"

    def restore(self, saved):
        self.restored.append(saved)

    def epoch_end(self, record):
        self.epochs.append(record.epoch)
        if record.epoch == self.fail_at:
            raise RuntimeError("callback failed")
        if record.epoch == self.interrupt_at:
            raise KeyboardInterrupt
        return record.epoch == self.stop_at


@pytest.mark.parametrize(
    "params",
    [{}, {"early_stopping": True, "max_iter": 4}, {"init": "random"}],
    ids=["tiny", "early-stopping", "random-init"],
)
def test_a_trainer_run_is_the_estimators_fit(params):
    estimator = tiny(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X)
        state = Trainer(config_of(estimator), Callbacks(), time.perf_counter()).fit(
            RowSource(X)
        )
    # The same code path, in the same process: the same weights, bit for bit.
    assert same(module_weights(state), module_weights(estimator._state))
    assert state.history.n_iter == estimator.n_iter_


def test_the_trainer_publishes_every_epoch_and_the_end():
    recorder = Recorder()
    Trainer(config_of(tiny(max_iter=3)), recorder, time.perf_counter()).fit(
        RowSource(X)
    )
    # Once at the start (the commit), after each epoch, and once at the end.
    assert recorder.published == [0, 1, 2, 3, 3]
    assert recorder.epochs == [0, 1, 2]


def test_a_callback_that_returns_true_stops_the_run():
    recorder = Recorder(stop_at=1)
    state = Trainer(config_of(tiny(max_iter=5)), recorder, time.perf_counter()).fit(
        RowSource(X)
    )
    assert state.history.n_iter == 2
    assert recorder.restored == []


def test_a_failing_callback_puts_back_what_was_saved():
    recorder = Recorder(fail_at=1)
    with pytest.raises(RuntimeError, match="callback failed"):
        Trainer(config_of(tiny(max_iter=5)), recorder, time.perf_counter()).fit(
            RowSource(X)
        )
    assert recorder.restored == ["saved"]


def test_ctrl_c_keeps_the_last_whole_epoch_and_says_resume():
    recorder = Recorder(interrupt_at=1)
    with pytest.warns(UserWarning, match="call resume"):
        state = Trainer(config_of(tiny(max_iter=5)), recorder, time.perf_counter()).fit(
            RowSource(X)
        )
    assert state.history.n_iter == 2
    assert state.unfinished
    assert recorder.restored == []


def test_ctrl_c_in_raise_mode_restores_and_propagates():
    recorder = Recorder(interrupt_at=1)
    trainer = Trainer(
        config_of(tiny(max_iter=5)), recorder, time.perf_counter(), on_interrupt="raise"
    )
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(RowSource(X))
    assert recorder.restored == ["saved"]


def test_continuing_trains_a_copy_and_leaves_the_previous_state_alone():
    config = config_of(tiny(max_iter=2))
    first = Trainer(config, Callbacks(), time.perf_counter()).fit(RowSource(X))
    before = module_weights(first)
    second = Trainer(config, Callbacks(), time.perf_counter()).fit(
        RowSource(X), first, incremental=True
    )
    assert same(module_weights(first), before)
    assert not same(module_weights(second), before)
    assert (first.history.n_iter, second.history.n_iter) == (2, 3)


def test_resume_refuses_a_changed_plan_parameter():
    recorder = Recorder(interrupt_at=0)
    config = config_of(tiny(max_iter=4))
    with pytest.warns(UserWarning, match="interrupted"):
        state = Trainer(config, recorder, time.perf_counter()).fit(RowSource(X))
    changed = config_of(tiny(max_iter=4, learning_rate_init=0.5))
    with pytest.raises(ValueError, match=r"learning_rate_init=0.5 \(was 0.002\)"):
        Trainer(changed, Callbacks(), time.perf_counter()).resume(RowSource(X), state)
    with pytest.raises(ValueError, match="X differs"):
        Trainer(config, Callbacks(), time.perf_counter()).resume(
            RowSource(X[::-1].copy()), state
        )


def test_resume_finishes_the_run_as_if_never_stopped():
    config = config_of(tiny(max_iter=4, shuffle=True))
    straight = Trainer(config, Callbacks(), time.perf_counter()).fit(RowSource(X))
    with pytest.warns(UserWarning, match="interrupted"):
        cut = Trainer(config, Recorder(interrupt_at=1), time.perf_counter()).fit(
            RowSource(X)
        )
    finished = Trainer(config, Callbacks(), time.perf_counter()).resume(
        RowSource(X), cut
    )
    assert finished.history.n_iter == 4
    assert same(module_weights(finished), module_weights(straight))


def test_the_width_search_is_trainer_runs_at_one_seed():
    estimator = tiny(n_components=0.8, max_iter=2, early_stopping="auto")
    config = config_of(estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state, explained, record = search_width(
            config, RowSource(X), Callbacks(), time.perf_counter()
        )
        width = state.architecture["n_components"]
        # As fit trains that width from scratch (cross-validated, on 120 rows).
        alone = fit_new(
            config.at_width(width, random_state=0),
            RowSource(X),
            Callbacks(),
            time.perf_counter(),
        )
    assert record[-1]["n_components"] == width or width in {
        entry["n_components"] for entry in record
    }
    assert same(module_weights(state), module_weights(alone))
    assert 0 <= explained <= 1


def test_the_configuration_is_frozen():
    config = config_of(tiny())
    with pytest.raises(AttributeError):
        config.max_iter = 5


def test_at_width_resolves_auto_hidden_layers_for_that_width():
    config = config_of(skae.MLPAutoencoder(0.5), X=np.zeros((5, 40)))
    assert config.at_width(10).architecture["hidden_layer_sizes"] == (512, 256, 128)
    assert config.at_width(20).architecture["hidden_layer_sizes"] == (512, 256)
    assert config.at_width(20).architecture["n_features"] == 40


def test_plan_parameters_are_plain_json_values():
    config = config_of(tiny(max_time=np.float32(60), alpha=np.float64(0.5)))
    assert type(config.params["max_time"]) is float
    assert type(config.params["alpha"]) is float
    assert set(config.params) == set(skae._config.PLAN_PARAMS)


def test_every_estimator_parameter_a_fit_reads_is_in_the_configuration():
    names = {field for field in FitConfig.__dataclass_fields__}
    unread = set(skae.MLPAutoencoder().get_params()) - names
    # warm_start, callbacks and distributed are the estimator's: which state to
    # continue, what to tell after each epoch, and which ranks the call joins.
    assert unread == {"warm_start", "callbacks", "distributed"}


# Data flows one way: nothing below the estimator imports it or the package.

BELOW = [
    "_budget",
    "_config",
    "_distributed",
    "_missing",
    "_modules",
    "_precision",
    "_rows",
    "_selection",
    "_sizing",
    "_sparse",
    "_state",
    "_torch_utils",
    "_trainer",
    "_training",
    "_validation",
    "_variance",
]
ABOVE = {"skae", "skae._autoencoder", "skae._base", "skae._imputer", "skae._cli"}


@pytest.mark.parametrize("module", BELOW)
def test_modules_below_the_estimator_never_import_it(module):
    path = pathlib.Path(skae.__file__).parent / f"{module}.py"
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not imported & ABOVE
    assert "skae.metrics" not in imported
