"""How many components on the MNIST sample? `skae compare --variance`, recorded.

Runs ``skae compare --data mnist-sample --variance 0.8 0.9 0.95`` (the
defaults; 4,000 training and 1,000 test digits shipped with skae) into a
temporary folder and keeps its results.json, with the machine, as
``variance_sample.json``, and its plot as ``variance_sample.png``: README's
main-job section shows that table.

Run:  python bench/variance_sample.py [--fractions 0.8 0.9 0.95] [--max-time S]
                                      [--out bench/results]
"""

import argparse
import json
import shlex
import shutil
import tempfile
from pathlib import Path

from skae._cli import main as skae_main

from common import machine, write_results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fractions", nargs="+", default=["0.8", "0.9", "0.95"], metavar="F"
    )
    parser.add_argument("--max-time", default=None, metavar="SECONDS")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report"
        argv = ["compare", "--data", "mnist-sample", "--variance", *args.fractions]
        if args.max_time:
            argv += ["--max-time", args.max_time]
        status = skae_main([*argv, "--out", str(report), "--no-progress", "--quiet"])
        if status:
            raise SystemExit(status)
        recorded = json.loads((report / "results.json").read_text())
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(
            report / "variance_vs_components.png", args.out / "variance_sample.png"
        )
    result = {
        "benchmark": "bench/variance_sample.py",
        # The command as a user would type it (the report went to a temporary
        # folder, quietly).
        "command": shlex.join(["skae", *argv]),
        "n_train": recorded["n_train"],
        "n_test": recorded["n_test"],
        "machine": machine(),
        "rows": [
            {key: value for key, value in row.items() if key != "search"}
            for row in recorded["variance"]
        ],
        "searches": {
            str(row["fraction"]): row["search"] for row in recorded["variance"]
        },
    }
    write_results(args.out / "variance_sample.json", result)


if __name__ == "__main__":
    main()
