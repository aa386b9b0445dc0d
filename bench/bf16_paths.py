"""Where bfloat16 training time goes: float32, autocast, and bf16 weights + fp32 master.

Times one training step (batch 256, Adam, 0.5 * MSE) of two models built with
plain torch, three ways: float32; the forward pass under ``torch.autocast``
(what ``precision="bfloat16"`` does: float32 weights cast to bfloat16 at every
step); and bfloat16 weights with float32 master copies in the optimizer (no
autocast; the gradients cast up and the updated weights cast down every step).
Each variant is warmed up, then the variants run interleaved, best of
``--rounds``; one more step of the autocast variant runs under torch.profiler
and the share of its CPU time spent in dtype casts (``aten::_to_copy``) is
recorded.

Run:  python bench/bf16_paths.py [--rounds 5] [--out bench/results]

Writes ``bf16_paths.json``.
"""

import argparse
import copy
import itertools
import time
from pathlib import Path

import torch
from torch import nn

from common import machine, write_results

BATCH = 256
STEPS = 20

MODELS = {
    "chapter 784-256-128-100, sigmoid": ([784, 256, 128, 100], nn.Sigmoid, nn.Sigmoid),
    "default k=30 784-512-256-30, GELU": ([784, 512, 256, 30], nn.GELU, nn.Identity),
}


def mlp(sizes, activation, last):
    layers = []
    for index, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        layers.append(activation() if index < len(sizes) - 2 else last())
    return nn.Sequential(*layers)


def autoencoder(sizes, activation, last):
    return nn.Sequential(
        mlp(sizes, activation, nn.Identity if last is nn.Identity else last),
        mlp(sizes[::-1], activation, last),
    )


def float32_step(model, optimizer, autocast):
    def step(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = 0.5 * nn.functional.mse_loss(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def master_step(model):
    low = copy.deepcopy(model).to(torch.bfloat16)
    master = [p.detach().float().clone() for p in low.parameters()]
    optimizer = torch.optim.Adam(master, lr=1e-3, fused=True)

    def step(batch):
        loss = 0.5 * nn.functional.mse_loss(
            low(batch.to(torch.bfloat16)).float(), batch
        )
        for p in low.parameters():
            p.grad = None
        loss.backward()
        for weight, p in zip(master, low.parameters(), strict=True):
            weight.grad = p.grad.float()
        optimizer.step()
        with torch.no_grad():
            torch._foreach_copy_(list(low.parameters()), master)

    return step


def cast_share(step, batch):
    """Fraction of one step's CPU time spent in aten::_to_copy (dtype casts)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
        step(batch)
    events = p.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    casts = sum(e.self_cpu_time_total for e in events if e.key == "aten::_to_copy")
    return casts / total if total else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    torch.manual_seed(0)
    X = torch.rand(BATCH * STEPS, 784)
    rows = []
    for name, spec in MODELS.items():
        variants = {}
        for variant in ("float32", "autocast"):
            model = autoencoder(*spec)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
            variants[variant] = float32_step(model, optimizer, variant == "autocast")
        variants["bf16 weights + fp32 master"] = master_step(autoencoder(*spec))
        best = dict.fromkeys(variants, float("inf"))
        for round_index in range(args.rounds + 1):
            for variant, step in variants.items():
                start = time.perf_counter()
                for index in range(STEPS):
                    step(X[index * BATCH : (index + 1) * BATCH])
                seconds = time.perf_counter() - start
                if round_index:  # the first round warms up
                    best[variant] = min(best[variant], seconds)
        share = cast_share(variants["autocast"], X[:BATCH])
        for variant, seconds in best.items():
            rows.append(
                {
                    "model": name,
                    "variant": variant,
                    "samples_per_s": BATCH * STEPS / seconds,
                    "vs_float32": best["float32"] / seconds,
                    "autocast_cast_share": share if variant == "autocast" else None,
                }
            )
            print(
                f"{name:36s} {variant:28s} {BATCH * STEPS / seconds:9,.0f} samples/s "
                f"({best['float32'] / seconds:.2f}x float32)"
                + (f", casts {share:.0%} of the step" if variant == "autocast" else ""),
                flush=True,
            )
    write_results(
        args.out / "bf16_paths.json",
        {"benchmark": "bench/bf16_paths.py", "machine": machine(), "rows": rows},
    )


if __name__ == "__main__":
    main()
