"""TrainingState: one state_dict, from which snapshots, copies and files derive."""

import time

import numpy as np
import pytest
import torch

from skae._rows import RowSource
from skae._state import TrainingState
from skae._trainer import Callbacks, Trainer

from _helpers import tiny

X = np.random.RandomState(1).rand(100, 8).astype(np.float32)


def trained(**params):
    config = tiny(**params)._fit_config(X)
    return config, Trainer(config, Callbacks(), time.perf_counter()).fit(RowSource(X))


def flat(state):
    return {
        f"{index}.{name}": tensor
        for index, module in enumerate(state.modules)
        for name, tensor in module.state_dict().items()
    }


def equal(first, second):
    return first.keys() == second.keys() and all(
        torch.equal(first[name], second[name]) for name in first
    )


def test_a_copy_is_independent_of_its_original():
    _, state = trained(solver="adam")
    other = state.copy()
    assert equal(flat(other), flat(state))
    with torch.no_grad():
        for parameter in other.encoder.parameters():
            parameter.add_(1.0)
    other.history.loss_curve.append(123.0)
    other.generator.manual_seed(5)
    assert not equal(flat(other), flat(state))
    assert 123.0 not in state.history.loss_curve
    assert state.optimizer is not other.optimizer


def test_restore_goes_back_to_the_snapshot_entirely():
    config, state = trained(max_iter=2)
    snapshot = state.snapshot()
    before = {name: tensor.clone() for name, tensor in flat(state).items()}
    generator = state.generator.get_state().clone()
    Trainer(config, Callbacks(), time.perf_counter()).fit(
        RowSource(X), state, incremental=True
    )
    trained_more = state.copy()
    # fit trained a copy; change this one in place to see restore undo it.
    trained_more.restore(snapshot)
    assert equal(flat(trained_more), before)
    assert torch.equal(trained_more.generator.get_state(), generator)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_the_file_form_round_trips_and_training_continues_identically(solver):
    config, state = trained(solver=solver, max_iter=2)
    metadata, tensors = state.to_tensors()
    loaded = TrainingState.from_tensors(
        metadata, tensors, tol=config.tol, n_iter_no_change=config.n_iter_no_change
    )
    assert equal(flat(loaded), flat(state))
    # JSON holds the hidden widths as a list.
    assert {**loaded.architecture, "hidden_layer_sizes": None} == {
        **state.architecture,
        "hidden_layer_sizes": None,
    }
    assert tuple(loaded.architecture["hidden_layer_sizes"]) == tuple(
        state.architecture["hidden_layer_sizes"]
    )
    trainer = Trainer(config, Callbacks(), time.perf_counter())
    one = trainer.fit(RowSource(X), state, incremental=True)
    other = trainer.fit(RowSource(X), loaded, incremental=True)
    assert equal(flat(one), flat(other))


def test_every_part_of_the_state_is_in_its_state_dict():
    _, state = trained()
    listed = set(state.state_dict())
    held = {name for name in vars(state) if not name.startswith("_")}
    # The modules are listed as "modules"; device and the start basis belong
    # to the process and to the fit that built the state.
    assert held - listed == {"encoder", "decoder", "device", "start_basis"}


def test_a_files_decision_is_checked_with_or_without_each_epochs():
    from skae._state import _check_decision

    chosen_only = {
        "keep": True,
        "scores": [-1.0, -0.5],
        "best_score": -0.5,
        "explained_variance": 0.5,
        "loss_is_half": True,
    }
    assert _check_decision(chosen_only) == chosen_only
    per_epoch = {
        **chosen_only,
        "keep_at": [False, False, True],
        "explained_at": [0.2, 0.3, 0.5],
        "pca_score": -1.2,
    }
    assert _check_decision(per_epoch) == per_epoch
    for broken in (
        {**per_epoch, "keep_at": [False, "yes", True]},
        {**per_epoch, "explained_at": [0.2, 0.3]},
        {key: value for key, value in per_epoch.items() if key != "pca_score"},
    ):
        with pytest.raises(ValueError, match="the plan's decision should hold"):
            _check_decision(broken)
