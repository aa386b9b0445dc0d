"""Quality per minute: the defaults' test error against PCA's, for time budgets.

For each n_components k and budget t, fits ``MLPAutoencoder(n_components=k,
max_time=t, max_iter=1000)`` (every other parameter at its default: PCA start,
one-cycle sized to the budget, early stopping) on the Fashion-MNIST training
images, in float32 and, where the CPU computes bfloat16 natively, in bfloat16,
and measures the mean squared reconstruction error on the test images as a
fraction of PCA's at the same k. The two precisions run one after the other
for each (k, t), their order alternating, so that a slower minute of a shared
machine does not fall on one of them alone. Each point is one fit: a budget is
a time, so a fit cannot be "best of" several without changing what it
measures; the load average of the machine is recorded beside every fit.

Run:  python bench/budget.py [--n-components 2 10 30 100] [--budgets 15 60 240]
          [--bfloat16-budgets 15 60 240] [--train-size 60000] [--out bench/results]

Writes ``budget.json`` (the table, with the date, machine and versions) and
``budget.png`` (the ratio to PCA against seconds; ``--plot-only`` redraws it
from an existing ``budget.json``).
"""

import argparse
import json
import os
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import MLPAutoencoder
from skae._precision import native_bfloat16
from skae.datasets import load_fashion_mnist

from common import machine, timed, write_results

warnings.filterwarnings("ignore", category=ConvergenceWarning)

# The goals, per budget: the autoencoder's test MSE at most this fraction of
# PCA's ("bfloat16" on a CPU with native bfloat16, "float32" anywhere).
GOALS = {
    ("bfloat16", 60): {2: 0.5, 10: 0.5, 30: 0.5, 100: 0.6},
    ("float32", 240): {30: 0.45, 100: 0.55},
}


def test_mse(model, X):
    """Mean squared reconstruction error per entry."""
    return float(np.mean((X - model.inverse_transform(model.transform(X))) ** 2))


def fit_one(k, budget, precision, X_train, X_test, pca_mse, random_state):
    """Fit the defaults under one budget; return the row."""
    ae = MLPAutoencoder(
        n_components=k,
        max_time=budget,
        max_iter=1000,
        precision=precision,
        random_state=random_state,
    )
    _, seconds = timed(ae.fit, X_train)
    mse = test_mse(ae, X_test)
    goal = GOALS.get((precision, budget), {}).get(k)
    row = {
        "n_components": k,
        "budget_seconds": budget,
        "precision": precision,
        "fit_seconds": seconds,
        "n_iter": int(ae.n_iter_),
        "load_average": os.getloadavg()[0],
        "test_mse": mse,
        "pca_test_mse": pca_mse,
        "ratio": mse / pca_mse,
        "goal": goal,
        "met": None if goal is None else bool(mse / pca_mse <= goal),
    }
    print(
        f"k={k:3d} budget={budget:4d}s {precision:8s}: {seconds:6.1f} s, "
        f"{ae.n_iter_:3d} epochs, test MSE {mse:.5f} = {mse / pca_mse:.3f} x PCA"
        + ("" if goal is None else f" (goal {goal})"),
        flush=True,
    )
    return row


def plot(rows, path):
    """Ratio to PCA against seconds: a colour per k, dashed for bfloat16."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ks = sorted({r["n_components"] for r in rows})
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = dict(zip(ks, cycle, strict=False))
    for k in ks:
        for precision in ("float32", "bfloat16"):
            points = sorted(
                (r["fit_seconds"], r["ratio"])
                for r in rows
                if (r["n_components"], r["precision"]) == (k, precision)
            )
            if not points:
                continue
            ax.plot(
                *zip(*points, strict=True),
                marker="o",
                color=colours[k],
                linestyle="-" if precision == "float32" else "--",
                label=f"k={k}, {precision}",
            )
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    budgets = sorted({r["budget_seconds"] for r in rows})
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("seconds of fitting (max_time)")
    ax.set_ylabel("test MSE / PCA's test MSE")
    ax.set_title("Fashion-MNIST: the defaults under a time budget")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-components", nargs="+", type=int, default=[2, 10, 30, 100])
    parser.add_argument("--budgets", nargs="+", type=int, default=[15, 60, 240])
    parser.add_argument(
        "--bfloat16-budgets", nargs="+", type=int, default=[15, 60, 240]
    )
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--plot-only", action="store_true")
    args = parser.parse_args()
    if args.plot_only:
        rows = json.loads((args.out / "budget.json").read_text())["rows"]
        plot(rows, args.out / "budget.png")
        return

    X_train, _ = load_fashion_mnist(subset="train")
    X_test, _ = load_fashion_mnist(subset="test")
    if args.train_size:
        X_train = X_train[: args.train_size]
    bfloat16 = native_bfloat16("cpu")
    rows = []
    flip = False
    for k in args.n_components:
        pca = PCA(n_components=k, random_state=args.random_state).fit(X_train)
        pca_mse = test_mse(pca, X_test)
        for budget in sorted(set(args.budgets) | set(args.bfloat16_budgets)):
            precisions = []
            if budget in args.budgets:
                precisions.append("float32")
            if bfloat16 and budget in args.bfloat16_budgets:
                precisions.append("bfloat16")
            if flip:
                precisions.reverse()
            flip = not flip
            for precision in precisions:
                rows.append(
                    fit_one(
                        k,
                        budget,
                        precision,
                        X_train,
                        X_test,
                        pca_mse,
                        args.random_state,
                    )
                )
    result = {
        "benchmark": "bench/budget.py",
        "dataset": "fashion-mnist",
        "n_train": int(X_train.shape[0]),
        "n_test": int(X_test.shape[0]),
        "native_bfloat16": bfloat16,
        "machine": machine(),
        "rows": rows,
    }
    if not bfloat16:
        result["note"] = (
            "This CPU has no native bfloat16 (AVX512-BF16 or AMX): float32 only."
        )
    write_results(args.out / "budget.json", result)
    plot(rows, args.out / "budget.png")
    print(f"wrote {args.out / 'budget.png'}")


if __name__ == "__main__":
    main()
