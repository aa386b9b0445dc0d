"""Training across processes: 2 ranks joined by gloo on 127.0.0.1.

Each test starts its ranks in fresh processes (tests/_ranks.py) with a hard
timeout: a hang fails the test instead of the run.
"""

import warnings

import numpy as np
import pytest
from _ranks import Raised, run_ranks
from _ranks_scenarios import data, data2, described

from skae import MLPAutoencoder

pytestmark = pytest.mark.ranks


def same(first, second):
    """Whether two ranks' descriptions are equal, weights bit for bit."""
    return all(
        np.array_equal(a, b)
        for a, b in zip(first["parameters"], second["parameters"], strict=True)
    ) and {k: v for k, v in first.items() if k != "parameters"} == {
        k: v for k, v in second.items() if k != "parameters"
    }


# promise: distributed.rst / What is shared across the ranks
def test_every_rank_ends_with_the_same_model(tmp_path):
    first, second = run_ranks("variants", 2, tmp_path, timeout=120)
    assert isinstance(first, dict) and isinstance(second, dict), (first, second)
    for name in ("defaults", "missing", "sparse", "weights", "budget", "bfloat16"):
        assert isinstance(first[name], dict), (name, first[name])
        # Gradients, validation scores and stopping are reduced over the ranks:
        # the same bits reach every rank.
        assert same(first[name], second[name]), name
    assert first["bfloat16"]["precision"] == "bfloat16"
    # The budget stops every rank at rank 0's epoch.
    assert first["budget"]["n_iter"] < 1000
    # Without the group, each rank fits its own rows: other models.
    assert not same(first["alone"], second["alone"])
    for refused in (first["search"], second["search"]):
        assert isinstance(refused, Raised) and "n_components=<that width>" in (
            refused.message
        )


# promise: distributed.rst / What is shared across the ranks
def test_two_ranks_match_one_process_with_the_same_global_batch(tmp_path):
    # Without shuffling, the ranks' k-th steps take rows [32k, 32k + 32) of
    # their halves: one process sees the same 64 rows per step in this order.
    # SGD: its steps are linear in the gradients, so the float32 rounding of
    # sums taken in another order stays at that size (Adam divides tiny
    # gradients by their own size, and can make it any size).
    first, _ = run_ranks(
        "same_global_batch", 2, tmp_path, max_iter=2, solver="sgd", timeout=60
    )
    X = data(512)
    halves = X[:256], X[256:]
    ordered = np.concatenate(
        [np.concatenate([h[32 * k : 32 * k + 32] for h in halves]) for k in range(8)]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = MLPAutoencoder(
            2,
            batch_size=64,
            shuffle=False,
            early_stopping=False,
            random_state=0,
            max_iter=2,
            solver="sgd",
        ).fit(ordered)
    one = described(alone)
    np.testing.assert_allclose(first["loss_curve"], one["loss_curve"], rtol=1e-4)
    for shared, single in zip(first["parameters"], one["parameters"], strict=True):
        # float32 sums in another order: float32 tolerance on the weights' scale.
        np.testing.assert_allclose(
            shared, single, rtol=0, atol=1e-5 * max(np.abs(single).max(), 1.0)
        )


# promise: distributed.rst / What is shared across the ranks
def test_held_out_error_within_3_percent_of_one_process(tmp_path):
    rows, test_rows = 6000, 1000
    first, second = run_ranks(
        "default_fit", 2, tmp_path, rows=rows, test_rows=test_rows, timeout=120
    )
    assert same(first, second)
    X = data2(rows + test_rows)
    model = MLPAutoencoder(2, random_state=0).fit(X[:rows])
    test = X[rows:]
    error = np.mean((model.inverse_transform(model.transform(test)) - test) ** 2)
    assert abs(first["error"] / error - 1) < 0.03


# promise: distributed.rst / When a rank fails
def test_a_rank_that_dies_is_reported_on_the_others(tmp_path):
    first, second = run_ranks("dies", 2, tmp_path, timeout=60)
    assert second is None  # it died
    assert isinstance(first, Raised) and first.kind == "PeerFailure", first
    assert "another rank failed" in first.message


# promise: distributed.rst / When a rank fails
def test_ctrl_c_on_one_rank_stops_every_rank(tmp_path):
    first, second = run_ranks("interrupted", 2, tmp_path, timeout=60)
    assert first == {"interrupted": True, "unchanged": True}
    assert isinstance(second, Raised) and second.kind == "PeerFailure", second


# promise: distributed.rst / What is shared across the ranks
def test_checkpoint_by_rank_0_and_resume_across_as_many_ranks(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    first, second = run_ranks(
        "checkpoint_then_resume", 2, tmp_path / "a", folder=str(folder), timeout=60
    )
    assert first == {"files": ["ckpt.skae"]}, first
    first, second = run_ranks(
        "checkpoint_then_resume",
        2,
        tmp_path / "b",
        folder=str(folder),
        resume_world=2,
        timeout=60,
    )
    assert isinstance(first, dict), first
    assert same(first, second)
    assert first["n_iter"] == 6
    # One process cannot finish what two started.
    import skae

    model = skae.load(folder / "ckpt.skae")
    with pytest.raises(
        ValueError, match="across 2 processes, and resume runs across 1"
    ):
        model.resume(data(400)[::2])


# promise: distributed.rst / How do I train on several GPUs or machines?
def test_distributed_true_needs_a_process_group():
    X = data(100)
    model = MLPAutoencoder(2, max_iter=2, distributed=True)
    with pytest.raises(ValueError, match="needs an initialised default process group"):
        model.fit(X)
    assert not hasattr(model, "n_iter_")
    # "auto" and False train alone.
    MLPAutoencoder(2, max_iter=2, distributed=False).fit(X)


# promise: distributed.rst / With Dask
def test_dask_workers_train_one_model_on_the_blocks_they_hold():
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    from skae.dask import fit_distributed

    X = data2(1200)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            worker_class=distributed.Nanny,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        blocks = client.persist(da.from_array(X, chunks=(300, -1)))
        distributed.wait(blocks)
        holders = client.who_has(distributed.futures_of(blocks))
        # Both workers hold blocks: fit_distributed makes each a rank.
        assert len({address for found in holders.values() for address in found}) == 2
        model = MLPAutoencoder(2, max_iter=3, random_state=0)
        fitted = fit_distributed(model, blocks, client=client)
    assert fitted is not model and not hasattr(model, "n_iter_")
    assert fitted.n_iter_ == 3
    assert fitted.distributed == "auto"
    assert fitted.transform(X).shape == (1200, 2)


# promise: distributed.rst / With torchrun
def test_the_torchrun_example_trains_one_model_on_every_rank(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from _ranks import free_port

    example = Path(__file__).parents[1] / "examples" / "train_torchrun.py"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        str(example),
    ]
    environment = {**os.environ, "SKAE_EXAMPLES_FAST": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=environment
    )
    # torch 2.13's gloo can abort a process as the interpreter exits, after
    # the script has finished (docs: "When a rank fails"); anything else fails.
    torn_down = "terminate called without an active exception" in done.stderr
    assert done.returncode == 0 or torn_down, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    ranks = sorted(line for line in lines if line.startswith("rank "))
    assert len(ranks) == 2 and "rank 0 of 2: 2000 rows" in ranks[0]
    # Both ranks print the same weights digest and test error.
    assert ranks[0].split(", weights")[1] == ranks[1].split(", weights")[1]
    assert "the same model on every rank: True" in lines


# promise: distributed.rst / What is shared across the ranks
def test_ranks_that_differ_train_alike_or_are_refused_on_every_rank(tmp_path):
    first, second = run_ranks("disagreements", 2, tmp_path, timeout=120)
    assert isinstance(first, dict) and isinstance(second, dict), (first, second)
    # Missing entries on one rank only: every rank takes their path.
    assert same(first["missing on one rank"], second["missing on one rank"])
    for name, named in (
        ("sparse on one rank", "sparse rows"),
        ("batch_size", "batch_size: rank 0 64, rank 1 32"),
        ("weights on one rank", "sample_weight given"),
    ):
        for refused in (first[name], second[name]):
            assert isinstance(refused, Raised) and refused.kind == "ValueError"
            assert named in refused.message
    # A fit that returns PCA: the same weights on every rank, silenced
    # correction included.
    assert same(first["returns PCA"], second["returns PCA"])
    assert same(first["random_state"], second["random_state"])
    # A callback that stops one rank stops them all, at the same epoch.
    assert first["stopped by one rank"]["n_iter"] == 2
    assert same(first["stopped by one rank"], second["stopped by one rank"])
    # The imputer trains on each process's rows.
    assert not same(first["imputer"], second["imputer"])
