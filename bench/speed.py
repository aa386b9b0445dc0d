"""How fast does skae train and infer, against the chapter's loop and the machine?

Measures in one run, on Fashion-MNIST's 60,000 training images (or uniform noise
of the same shape when the dataset is not installed):

- the machine's matmul rate (fp32 and bf16), hence the matmul-bound limit of
  samples/s for each model: one training sample costs 6 FLOPs per weight
  (forward 2, backward 4), one inference sample 2 per weight it passes;
- the chapter's own loop (bench/chapter_loop.py) and skae on the chapter's
  model; a plain PyTorch loop (bench/plain_loop.py) of skae's default network,
  with and without the PCA start's linear paths, against skae's default fit
  (k=30) without early stopping, in float32 and, where the CPU has it natively,
  bfloat16; skae's default fit as is; MLPRegressor fitted X -> X; PCA;
- transform / inverse_transform throughput, the cost per epoch at 15k/30k/60k
  samples, and the peak extra memory of transforming a large numpy memmap.

Prints a table (samples/s, ratio to the chapter's loop, % of the limit) and
writes ``speed.json`` into ``--out``.

Run:  python bench/speed.py [--epochs 3] [--rounds 3] [--memmap-rows 1000000]
      [--out DIR]
"""

import argparse
import itertools
import subprocess
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import plain_loop
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from skae import MLPAutoencoder
from skae._precision import native_bfloat16
from skae._presets import CHAPTER_PARAMS

import chapter_loop
from common import (
    best_of,
    interleaved_best,
    machine,
    random_memmap,
    timed,
    write_results,
)

warnings.filterwarnings("ignore", category=ConvergenceWarning)


def load_data():
    """Return (X, name): Fashion-MNIST's training images, or noise like them."""
    try:
        from skae.datasets import load_fashion_mnist

        X, _ = load_fashion_mnist(subset="train", download=False)
        return X, "fashion-mnist"
    except (OSError, ValueError, TypeError):
        rng = np.random.default_rng(0)
        return rng.random((60000, 784), dtype=np.float32), "uniform noise"


def matmul_gflops(dtype, size=2048, repeats=10):
    """Best GFLOP/s of a square matmul of `size`, the machine's matmul limit."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
        if dtype != torch.float32 and best > 2:  # a slow path: one is enough
            break
    return 2 * size**3 / best / 1e9


def weights_of(layer_sizes):
    """Number of multiply-adds of one sample through linear layers of these widths."""
    return sum(a * b for a, b in itertools.pairwise(layer_sizes))


def model_macs(hidden, n_components, init):
    """Multiply-adds per sample through (encoder, decoder) of an skae model."""
    sizes = [784, *hidden, n_components]
    mlp = weights_of(sizes)
    if init == "pca":  # a linear path beside each MLP
        return mlp + 784 * n_components, mlp + 784 * n_components
    return mlp, mlp


MEMMAP_SCRIPT = """
import sys, numpy as np, skae
path, rows, model = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.path.insert(0, sys.argv[4])
from common import PeakAnonMemory, timed
X = np.memmap(path, dtype=np.float32, mode="r", shape=(rows, 784))
ae = skae.load(model)
ae.transform(X[:4096])
with PeakAnonMemory() as memory:
    Z, seconds = timed(ae.transform, X)
print(memory.extra_bytes, Z.nbytes, seconds)
"""


def memmap_transform(model, rows, workdir):
    """Transform `rows` rows from a memmap in a fresh process; measure its memory."""
    path = Path(workdir) / "X.f32"
    random_memmap(path, rows)  # written here, read by a fresh process
    model_path = Path(workdir) / "model.skae"
    model.save(model_path)
    output = subprocess.run(
        [
            sys.executable,
            "-c",
            MEMMAP_SCRIPT,
            str(path),
            str(rows),
            str(model_path),
            str(Path(__file__).parent),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    path.unlink()
    extra, output_bytes, seconds = int(output[0]), int(output[1]), float(output[2])
    return {
        "rows": rows,
        "extra_memory_mb": extra / 2**20,
        "output_mb": output_bytes / 2**20,
        "budget_mb": output_bytes / 2**20 + 256,
        "rows_per_s": rows / seconds,
    }


def main(argv=None):
    """Run every measurement, print the table, write speed.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed runs of each (best kept)"
    )
    parser.add_argument("--memmap-rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    X, data_name = load_data()
    n = X.shape[0]
    epochs = args.epochs
    threads = torch.get_num_threads()
    print(f"data: {data_name} {X.shape}, {epochs} epochs, {threads} threads")

    fp32 = matmul_gflops(torch.float32)
    # 512 for bf16: where the CPU lacks native bf16, 2048 takes a minute.
    bf16 = matmul_gflops(torch.bfloat16, size=512)
    print(f"matmul: fp32 {fp32:.0f} GFLOP/s (2048^3), bf16 {bf16:.1f} (512^3)")

    chapter_macs = sum(model_macs((256, 128), 100, "random"))
    rows = []

    def add(name, samples_per_s, macs=None, flops_per_mac=6, note=""):
        limit = None if macs is None else fp32 * 1e9 / (flops_per_mac * macs)
        rows.append(
            {
                "name": name,
                "samples_per_s": samples_per_s,
                "limit_samples_per_s": limit,
                "note": note,
            }
        )

    # Training: every contender warmed up once, then `--rounds` rounds in
    # turn, each keeping its fastest; ratios come from this one run.
    native = native_bfloat16("cpu")
    precisions = ["float32", "bfloat16"] if native else ["float32"]
    X_tensor = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))

    def fit(model, data, *target):
        return timed(lambda: model.fit(data, *target))[1]

    def chapter_model(**params):
        return MLPAutoencoder(
            **{**CHAPTER_PARAMS, "max_iter": epochs, **params}, random_state=0
        )

    def mlp_regressor():
        return MLPRegressor(
            hidden_layer_sizes=(256, 128, 100, 128, 256),
            activation="logistic",
            max_iter=1,
            batch_size=256,
            learning_rate_init=0.01,
            random_state=0,
        )

    def run(make, data, samples, *target):
        def contender():
            model = make()
            return model, fit(model, data, *target)

        contender.samples = samples
        return contender

    def loop(function, *args, **kwargs):
        def contender():
            return None, timed(function, *args, **kwargs)[1]

        contender.samples = epochs * n
        return contender

    def default(**params):
        return MLPAutoencoder(30, max_iter=epochs, random_state=0, **params)

    contenders = {
        "chapter loop": loop(chapter_loop.train, X, epochs),
        "skae, chapter model": run(chapter_model, X, epochs * n),
    }
    for precision in precisions:
        contenders[f"plain loop, MLP only, {precision}"] = loop(
            plain_loop.train, X_tensor, epochs, precision=precision
        )
        contenders[f"plain loop, same model, {precision}"] = loop(
            plain_loop.train, X_tensor, epochs, precision=precision, linear_paths=True
        )
        contenders[f"skae k=30, no early stopping, {precision}"] = run(
            partial(default, early_stopping=False, precision=precision),
            X,
            epochs * n,
        )
    contenders["skae k=30, defaults"] = run(default, X, epochs * n)
    contenders["MLPRegressor X->X (fit, 1 epoch)"] = run(mlp_regressor, X, n, X)
    contenders["PCA(100) fit"] = run(partial(PCA, 100, random_state=0), X, n)
    best = interleaved_best(contenders, args.rounds)

    default_hidden = best["skae k=30, defaults"][0].hidden_layer_sizes_
    default_macs = sum(model_macs(default_hidden, 30, "pca"))
    mlp_macs = sum(model_macs(default_hidden, 30, "random"))
    notes = {
        "skae, chapter model": "precision " + best["skae, chapter model"][0].precision_,
        "skae k=30, defaults": "early stopping on, precision "
        + best["skae k=30, defaults"][0].precision_,
    }
    for name, contender in contenders.items():
        if "chapter" in name or "MLPRegressor" in name:
            macs = chapter_macs
        elif "PCA(" in name:
            macs = None
        elif "MLP only" in name:
            macs = mlp_macs
        else:
            macs = default_macs
        add(
            name,
            contender.samples / best[name][1],
            macs,
            note=notes.get(name, ""),
        )
    chapter = best["skae, chapter model"][0]
    pca = best["PCA(100) fit"][0]
    speed = {row["name"]: row["samples_per_s"] for row in rows}
    default_precision = best["skae k=30, defaults"][0].precision_
    ratios = {
        "chapter model / chapter loop": speed["skae, chapter model"]
        / speed["chapter loop"],
        "defaults / plain loop, same model (its precision)": speed[
            "skae k=30, defaults"
        ]
        / speed[f"plain loop, same model, {default_precision}"],
        "defaults / plain loop, MLP only (its precision)": speed["skae k=30, defaults"]
        / speed[f"plain loop, MLP only, {default_precision}"],
    }
    for precision in precisions:
        skae_speed = speed[f"skae k=30, no early stopping, {precision}"]
        ratios[f"no early stopping / plain loop, same model, {precision}"] = (
            skae_speed / speed[f"plain loop, same model, {precision}"]
        )
        ratios[f"no early stopping / plain loop, MLP only, {precision}"] = (
            skae_speed / speed[f"plain loop, MLP only, {precision}"]
        )
    ratios["default precision / float32, no early stopping"] = (
        speed[f"skae k=30, no early stopping, {default_precision}"]
        / speed["skae k=30, no early stopping, float32"]
    )

    # Inference: 2 FLOPs per multiply-add, one pass; a fraction of a second
    # each, so the fastest of 3 runs.
    encoder_macs, decoder_macs = model_macs((256, 128), 100, "random")
    Z, seconds = best_of(3, chapter.transform, X)
    add("skae transform (chapter model)", n / seconds, encoder_macs, 2)
    _, seconds = best_of(3, chapter.inverse_transform, Z)
    add("skae inverse_transform (chapter)", n / seconds, decoder_macs, 2)
    _, seconds = best_of(3, pca.transform, X)
    add("PCA(100) transform", n / seconds)

    # Linear cost: time per epoch (the second, warm one) at three sizes.
    scaling = {}
    for size in (15000, 30000, 60000):
        model = MLPAutoencoder(**{**CHAPTER_PARAMS, "max_iter": 2}, random_state=0)
        records = []
        model.set_params(
            callbacks=[lambda _, record, kept=records: kept.append(record)]
        )
        model.fit(X[:size])
        scaling[size] = records[-1].seconds
    per_sample = {size: s / size for size, s in scaling.items()}
    reference = per_sample[60000]
    scaling_rows = {
        size: {
            "seconds_per_epoch": scaling[size],
            "vs_linear": per_sample[size] / reference,
        }
        for size in scaling
    }

    print("ratios measured in this run:")
    for name, ratio in ratios.items():
        print(f"  {name}: {ratio:.2f}")
    baseline = rows[0]["samples_per_s"]
    print(f"{'':<36}{'samples/s':>12}{'x chapter':>11}{'% of limit':>12}")
    for row in rows:
        row["ratio_to_chapter"] = row["samples_per_s"] / baseline
        limit = row["limit_samples_per_s"]
        row["percent_of_limit"] = (
            None if limit is None else 100 * row["samples_per_s"] / limit
        )
        percent = "" if limit is None else f"{row['percent_of_limit']:.0f}%"
        print(
            f"{row['name']:<36}{row['samples_per_s']:>12,.0f}"
            f"{row['ratio_to_chapter']:>11.2f}{percent:>12}  {row['note']}"
        )
    print("time per epoch (chapter model), relative to linear in n:")
    for size, row in scaling_rows.items():
        print(
            f"  n={size:>6}: {row['seconds_per_epoch']:.2f} s, {row['vs_linear']:.3f}"
        )

    memmap = None
    if args.memmap_rows:
        with tempfile.TemporaryDirectory() as workdir:
            memmap = memmap_transform(chapter, args.memmap_rows, workdir)
        print(
            f"memmap transform of {memmap['rows']:,} rows: peak extra memory "
            f"{memmap['extra_memory_mb']:.0f} MB (budget: output "
            f"{memmap['output_mb']:.0f} MB + 256 MB), "
            f"{memmap['rows_per_s']:,.0f} rows/s"
        )

    result = {
        "machine": machine(),
        "data": data_name,
        "epochs": epochs,
        "rounds": args.rounds,
        "method": (
            "each training row: one warm-up run, then the best of `rounds` runs "
            "interleaved with the other rows; inference rows: best of 3"
        ),
        "matmul_gflops": {"fp32": fp32, "bf16": bf16},
        "rows": rows,
        "epoch_scaling": scaling_rows,
        "memmap_transform": memmap,
        "ratios": ratios,
    }
    write_results(args.out / "speed.json", result)


if __name__ == "__main__":
    main()
