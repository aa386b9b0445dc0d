"""Does bfloat16 training cost quality? The default model in both precisions.

Fits ``MLPAutoencoder(k, precision=p, random_state=0)`` with every other
parameter at its default, for k = 2, 10, 30 and 100 and p = float32 and
bfloat16, on Fashion-MNIST's 60,000 training images, and measures the mean
squared reconstruction error on its 10,000 test images. The bfloat16 fits are
the "auto" default on CPUs with native bfloat16 (AMX, AVX512-BF16); this says
what that default costs. Needs native bfloat16: elsewhere torch emulates it
(far slower), and the script says so and stops.

Run:  python bench/bf16_quality.py [--out DIR]
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skae import MLPAutoencoder
from skae._precision import native_bfloat16
from skae.datasets import load_fashion_mnist

from common import machine, write_results

warnings.filterwarnings("ignore", category=ConvergenceWarning)
WIDTHS = (2, 10, 30, 100)
PRECISIONS = ("float32", "bfloat16")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    if not native_bfloat16("cpu"):
        raise SystemExit("This CPU has no native bfloat16: nothing to measure.")
    X_train, _ = load_fashion_mnist(subset="train", download=False)
    X_test, _ = load_fashion_mnist(subset="test", download=False)
    rows = []
    for k in WIDTHS:
        errors, seconds = {}, {}
        for precision in PRECISIONS:
            start = time.perf_counter()
            ae = MLPAutoencoder(k, precision=precision, random_state=0).fit(X_train)
            seconds[precision] = time.perf_counter() - start
            residual = X_test - ae.reconstruct(X_test)
            errors[precision] = float(np.mean(np.square(residual, dtype=np.float64)))
        row = {
            "n_components": k,
            "test_mse_float32": errors["float32"],
            "test_mse_bfloat16": errors["bfloat16"],
            "error_ratio": errors["bfloat16"] / errors["float32"],
            "fit_seconds_float32": seconds["float32"],
            "fit_seconds_bfloat16": seconds["bfloat16"],
            "speedup": seconds["float32"] / seconds["bfloat16"],
        }
        rows.append(row)
        print(
            f"k={k:>3}: test MSE float32 {row['test_mse_float32']:.5f}, bfloat16 "
            f"{row['test_mse_bfloat16']:.5f} (x{row['error_ratio']:.4f}); fit "
            f"{row['fit_seconds_float32']:.1f} s vs "
            f"{row['fit_seconds_bfloat16']:.1f} s "
            f"(x{row['speedup']:.2f})"
        )
    write_results(
        args.out / "bf16_quality.json",
        {
            "machine": machine(),
            "data": "fashion-mnist, 60,000 train / 10,000 test",
            "method": "one default fit per precision and width, random_state=0",
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
