"""Where does a default fit's time go? Its phases, and one step's parts.

On Fashion-MNIST's 60,000 training images (uniform noise of that shape when the
dataset is not installed), ``MLPAutoencoder(30)`` with the other parameters at
their defaults but ``early_stopping`` (both settings) and ``precision`` (both):

- **phases** of a whole ``fit``: validating X, converting the rows, the PCA
  start, the digest that ``resume`` checks, the epochs, the comparison with
  PCA, and the closing measurement of ``explained_variance_score_``. Each is
  timed by wrapping the function that does it; "other" is the rest.
- **one optimisation step** of the default model, taken apart: gathering the
  batch, forward and loss, backward, the optimizer, the learning-rate
  schedule; and the same step without the PCA start's linear paths (the plain
  loop's model, bench/plain_loop.py), to price them. Each part is timed over
  the same steps, best of 3 passes.

Writes ``profile.json`` into ``--out``.

Run:  python bench/profile_fit.py [--epochs 2] [--steps 60] [--out DIR]
"""

import argparse
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import plain_loop
import torch
from sklearn.exceptions import ConvergenceWarning
from speed import load_data

import skae
from skae import _base, _rows, _state, _trainer, _training

from common import machine, write_results

warnings.filterwarnings("ignore", category=ConvergenceWarning)

# (label, module, attribute): each wrapped to add its seconds to its phase.
PHASES = [
    ("validate X", _base.BaseAutoencoder, "_validate_input"),
    ("convert the rows", _rows, "rows_for_training"),
    ("PCA start", _state, "principal_axes"),
    ("digest for resume", _rows.RowSource, "digest"),
    ("epochs", _trainer, "train_epochs"),
    ("compare with PCA", _trainer, "beats_pca"),
    ("explained variance", _base, "measured_explained_variance"),
]


@contextmanager
def phase_timers():
    """Wrap every phase's function; yield the dict of seconds they add up."""
    seconds = {label: 0.0 for label, _, _ in PHASES}
    originals = []
    for label, owner, name in PHASES:
        original = (
            owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        )
        originals.append((owner, name, original))

        def timed(*args, _original=original, _label=label, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                seconds[_label] += time.perf_counter() - start

        setattr(owner, name, timed)
    try:
        yield seconds
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def fit_phases(X, epochs, early_stopping, precision, rounds):
    """Return the phases of the fastest of `rounds` fits (seconds each, and total)."""
    best = None
    for _ in range(rounds):
        model = skae.MLPAutoencoder(
            30,
            max_iter=epochs,
            early_stopping=early_stopping,
            precision=precision,
            random_state=0,
        )
        with phase_timers() as seconds:
            start = time.perf_counter()
            model.fit(X)
            total = time.perf_counter() - start
        if best is None or total < best["total"]:
            best = {"total": total, "phases": dict(seconds), "n_iter": model.n_iter_}
    best["phases"]["other"] = best["total"] - sum(best["phases"].values())
    return best


def step_parts(encoder, decoder, optimizer, scheduler, X, steps, precision):
    """Return the best seconds per step of each part, over 3 passes of `steps`."""
    parts = ("gather", "forward and loss", "backward", "optimizer", "schedule")
    best = dict.fromkeys(parts, float("inf"))
    autocast = torch.autocast(
        "cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"
    )
    encoder.train()
    decoder.train()
    for _ in range(4):  # the first pass warms up
        spent = dict.fromkeys(parts, 0.0)
        order = torch.randperm(X.shape[0])
        for step in range(steps):
            t0 = time.perf_counter()
            batch = X[order[step * 256 : (step + 1) * 256]]
            t1 = time.perf_counter()
            with autocast:
                loss = 0.5 * torch.nn.functional.mse_loss(
                    decoder(encoder(batch)), batch
                )
            t2 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            t3 = time.perf_counter()
            optimizer.step()
            t4 = time.perf_counter()
            if scheduler is not None:
                scheduler.step()
            t5 = time.perf_counter()
            for part, seconds in zip(
                parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True
            ):
                spent[part] += seconds
        for part in parts:
            best[part] = min(best[part], spent[part] / steps)
    return best


def default_step(X, steps, precision):
    """Take apart the step of skae's default model (PCA start, its optimizer)."""
    model = skae.MLPAutoencoder(
        30, max_iter=1, early_stopping=False, precision=precision, random_state=0
    ).fit(X[:20000])
    state = model._state
    state.use_optimizer("adam", 0.002, 0.9)
    schedule = _training.Schedule(state.optimizer, "one_cycle", 0.002, 10**6)
    return step_parts(
        state.encoder,
        state.decoder,
        state.optimizer,
        schedule,
        torch.from_numpy(X),
        steps,
        precision,
    )


def plain_step(X, steps, precision):
    """Take apart the plain loop's step: the same MLP without the linear paths."""
    torch.manual_seed(0)
    encoder = plain_loop.mlp([784, 512, 256, 30])
    decoder = plain_loop.mlp([30, 256, 512, 784])
    parameters = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=0.002, fused=True)
    return step_parts(
        encoder, decoder, optimizer, None, torch.from_numpy(X), steps, precision
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    X, data_name = load_data()
    X = np.ascontiguousarray(X, dtype=np.float32)
    precisions = ["float32"]
    if skae._precision.native_bfloat16("cpu"):
        precisions.append("bfloat16")
    skae.MLPAutoencoder(30, max_iter=1).fit(X[:2000])  # warm up

    fits = []
    for precision in precisions:
        for early_stopping in (False, "auto"):
            result = fit_phases(X, args.epochs, early_stopping, precision, args.rounds)
            result.update(precision=precision, early_stopping=early_stopping)
            fits.append(result)
            print(
                f"{precision}, early_stopping={early_stopping!s}: "
                f"{result['total']:.2f} s for {result['n_iter']} epochs"
            )
            for label, seconds in result["phases"].items():
                print(f"  {label:<22}{seconds:>7.3f} s")

    steps = []
    for precision in precisions:
        for name, take_apart in (
            ("skae default model", default_step),
            ("plain loop model", plain_step),
        ):
            parts = take_apart(X, args.steps, precision)
            steps.append({"model": name, "precision": precision, "parts": parts})
            total = sum(parts.values())
            print(f"{name}, {precision}: {total * 1e3:.2f} ms per step")
            for part, seconds in parts.items():
                print(f"  {part:<18}{seconds * 1e3:>7.3f} ms")

    write_results(
        args.out / "profile.json",
        {
            "machine": machine(),
            "data": data_name,
            "epochs": args.epochs,
            "steps": args.steps,
            "method": (
                "phases: the fastest of `rounds` fits, each phase timed by "
                "wrapping its function; step parts: best of 3 passes over "
                "`steps` steps after one warm-up pass"
            ),
            "fits": fits,
            "steps_taken_apart": steps,
        },
    )


if __name__ == "__main__":
    main()
