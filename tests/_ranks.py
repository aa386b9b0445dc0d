"""Run a function on 2 processes joined by gloo on 127.0.0.1, with a hard timeout.

`run_ranks(name, world_size, tmp_path, **kwargs)` starts one process per rank
(spawned: a fresh interpreter each), joins them into a default process group
on a free port, calls ``SCENARIOS[name](rank, world_size, **kwargs)`` in each
and returns what each returned, in rank order. A rank that raised returns its
`Raised`; a rank that had not finished when the timeout struck is killed and
returns None. Nothing here waits longer than the timeout.
"""

import datetime
import multiprocessing
import os
import pickle
import socket
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = {}


@dataclass
class Raised:
    """What a rank raised."""

    kind: str
    message: str


def scenario(function):
    """Register `function` as a scenario the ranks can run."""
    SCENARIOS[function.__name__] = function
    return function


def free_port():
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_ranks(name, world_size, tmp_path, timeout=60, **kwargs):
    """Run scenario `name` on `world_size` ranks; return their results in order."""
    context = multiprocessing.get_context("spawn")
    port = free_port()
    out = Path(tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    processes = [
        context.Process(
            target=_rank_main,
            args=(rank, world_size, port, name, str(out), kwargs),
            daemon=True,
        )
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
    for process in processes:
        left = (deadline - datetime.datetime.now()).total_seconds()
        process.join(max(left, 0.1))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(5)
    results = []
    for rank in range(world_size):
        path = out / f"rank-{rank}.pkl"
        results.append(pickle.loads(path.read_bytes()) if path.exists() else None)
    return results


def _rank_main(rank, world_size, port, name, out, kwargs):
    import torch
    import torch.distributed as dist

    # Two ranks on two cores: one thread each.
    torch.set_num_threads(1)
    tests = str(Path(__file__).parent)
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import _ranks_scenarios  # noqa: F401  (registers the scenarios)

    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=30),
    )
    try:
        result = SCENARIOS[name](rank, world_size, **kwargs)
    except BaseException as error:
        result = Raised(type(error).__name__, f"{error}\n{traceback.format_exc()}")
    path = Path(out) / f"rank-{rank}.pkl"
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(pickle.dumps(result))
    os.replace(temporary, path)
    if not isinstance(result, Raised) or "Distributed" not in result.message:
        try:
            dist.destroy_process_group()
        except Exception:
            pass
