"""Training samples/s on 1 and N processes, one model across them (torchrun).

Each run starts ``torchrun --nproc-per-node P`` on this script (``--worker``):
rank r fits ``MLPAutoencoder(30, early_stopping=False, max_iter=EPOCHS)`` to
every P-th row of the 60,000 Fashion-MNIST training images from r, through
DistributedDataParallel, and rank 0 reports the fit's seconds (the slowest
rank's, as the ranks end together). samples/s counts every rank's rows times
the epochs. The process counts are interleaved, each run `--rounds` times, and
the best run of each is kept; a warm-up run of each comes first. With P
processes on a CPU, each takes cores/P threads: on 2 cores the 2-process run
has no cores to gain, only the gradient exchange to pay. On a GPU machine,
``--device cuda --backend nccl --nproc-per-node <GPUs>`` gives each rank a GPU.

Run:  python bench/distributed.py [--nproc-per-node 2] [--rounds 3]
      [--epochs 3] [--rows 60000] [--device cpu] [--backend gloo] [--out DIR]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import machine, write_results


def worker(args):
    """One rank: fit its rows, across the group; rank 0 writes the seconds."""
    import torch
    import torch.distributed as dist

    from skae import MLPAutoencoder
    from skae.datasets import load_fashion_mnist

    dist.init_process_group(args.backend)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    if args.device.startswith("cuda"):
        torch.cuda.set_device(rank % torch.cuda.device_count())
        device = f"cuda:{rank % torch.cuda.device_count()}"
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
        device = "cpu"
    X = load_fashion_mnist(subset="train")[0][: args.rows]
    mine = np.ascontiguousarray(X[rank::world_size])
    model = MLPAutoencoder(
        30,
        early_stopping=False,
        max_iter=args.epochs,
        random_state=0,
        device=device,
        precision=args.precision,
    )
    dist.barrier()
    start = time.perf_counter()
    model.fit(mine)
    seconds = time.perf_counter() - start
    slowest = [None] * world_size
    dist.all_gather_object(slowest, seconds)
    if rank == 0:
        Path(args.report).write_text(
            json.dumps(
                {
                    "processes": world_size,
                    "seconds": max(slowest),
                    "rows": len(X),
                    "precision": model.precision_,
                    "threads_per_process": torch.get_num_threads(),
                }
            )
        )
    dist.destroy_process_group()


def launch(processes, args, report):
    """Run the worker under torchrun on `processes` ranks; return its report."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(processes),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(port),
        __file__,
        "--worker",
        "--report",
        str(report),
        "--rows",
        str(args.rows),
        "--epochs",
        str(args.epochs),
        "--device",
        args.device,
        "--backend",
        args.backend,
        "--precision",
        args.precision,
    ]
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(Path(report).read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc-per-node", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="gloo")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return
    counts = sorted({1, args.nproc_per_node})
    best = {}
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        for processes in counts:
            launch(processes, args, report)  # warm-up: caches, first-call costs
        for round_ in range(args.rounds):
            for processes in counts:
                run = launch(processes, args, report)
                rate = run["rows"] * args.epochs / run["seconds"]
                print(
                    f"round {round_ + 1}: {processes} process(es), "
                    f"{run['seconds']:.2f} s, {rate:,.0f} samples/s",
                    flush=True,
                )
                if processes not in best or run["seconds"] < best[processes]["seconds"]:
                    best[processes] = {**run, "samples_per_s": rate}
    one, many = best[counts[0]], best[counts[-1]]
    ratio = many["samples_per_s"] / one["samples_per_s"]
    print(f"{counts[-1]} processes / 1 process: {ratio:.2f}x samples/s")
    write_results(
        args.out / "distributed.json",
        {
            "machine": {**machine(), "load_average": list(os.getloadavg())},
            "data": f"Fashion-MNIST, first {args.rows:,} training images",
            "model": "MLPAutoencoder(30, early_stopping=False, "
            f"max_iter={args.epochs})",
            "device": args.device,
            "backend": args.backend,
            "rounds": args.rounds,
            "runs": [best[count] for count in counts],
            "ratio": ratio,
        },
    )


if __name__ == "__main__":
    main()
