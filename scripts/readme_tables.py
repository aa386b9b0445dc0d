"""Write README.md's benchmark tables from the results files in bench/results/.

Every measured number README.md quotes sits between a pair of markers,
``<!-- table:NAME:start -->`` and ``<!-- table:NAME:end -->``, and is written
there by this script from the JSON file a benchmark wrote (``quality`` from
``bench/results/quality.json``, written by ``bench/quality.py``; ``speed`` from
``speed.json``, written by ``bench/speed.py``), with the machine and the date
beside it.

``python scripts/readme_tables.py`` rewrites the sections after a benchmark run;
``python scripts/readme_tables.py --check`` writes nothing and exits 1 when
README.md differs from what the results files give (tests/test_readme.py runs
it). docs/conf.py uses `quality_verdict` and `quality_summary` for the same
sentences in the documentation.
"""

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "results"
SECTION = re.compile(
    r"<!-- table:(?P<name>[a-z_]+):start -->\n.*?<!-- table:(?P=name):end -->",
    re.DOTALL,
)
# An error ratio from here to 1 is reported as level with PCA, not below it.
LEVEL = 0.99


def machine_line(machine, script):
    """Return where, when and with what `script` measured, as one sentence."""
    threads = machine["torch_threads"]
    return (
        f"Measured {machine['date']} by `python {script}` on a "
        f"{machine['cpu_count']}-core {machine['processor']} CPU "
        f"(torch's {machine['cpu_capability']} kernels, {threads} "
        f"thread{'' if threads == 1 else 's'}), Python {machine['python']}, "
        f"torch {machine['torch']}, scikit-learn {machine['sklearn']}."
    )


def _widths(ks):
    """Return "2, 30 and 100 components" for [2, 30, 100]."""
    ks = [str(k) for k in ks]
    listed = ks[0] if len(ks) == 1 else ", ".join(ks[:-1]) + " and " + ks[-1]
    return f"{listed} component{'' if ks == ['1'] else 's'}"


def quality_summary(results):
    """Return what the quality results say, as a list of one item per dataset."""
    items = []
    datasets = dict.fromkeys(row["dataset"] for row in results["rows"])
    for dataset in datasets:
        rows = [row for row in results["rows"] if row["dataset"] == dataset]
        ratios = [row["ratio"] for row in rows]
        level = [row["n_components"] for row in rows if row["ratio"] >= LEVEL]
        above = [row["n_components"] for row in rows if row["ratio"] > 1]
        if above:
            where = f"above PCA's at {_widths(above)}"
        elif level:
            where = f"below PCA's at every width, level with it at {_widths(level)}"
        else:
            where = "below PCA's at every width measured"
        sentences = [
            f"On {dataset} ({rows[0]['n_train']:,} training and "
            f"{rows[0]['n_test']:,} test images) the autoencoder's test error is "
            f"{min(ratios):.3f} to {max(ratios):.3f} times PCA's: {where}."
        ]
        items.append(" ".join(sentences))
    return items


def quality_table(results):
    """Return the README section of bench/results/quality.json."""
    flags = ", ".join(results["machine"].get("cpu_flags", [])) or "not recorded"
    lines = [
        machine_line(results["machine"], "bench/quality.py"),
        f"CPU flags: {flags}. MSE: mean squared reconstruction error per pixel on "
        "the test images; s: seconds to fit; AE: the default `MLPAutoencoder` "
        '(`precision="auto"`: bfloat16 where the CPU has it natively).',
        "",
        "| data | k | PCA MSE | AE MSE | AE / PCA | PCA s | AE s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['dataset']} | {row['n_components']} | {row['pca_mse']:.5f} "
            f"| {row['autoencoder_mse']:.5f} | {row['ratio']:.3f} "
            f"| {row['pca_fit_seconds']:.1f} "
            f"| {row['autoencoder_fit_seconds']:.1f} |"
        )
    summary = [f"- {item}" for item in quality_summary(results)]
    return "\n".join([*lines, "", *summary]) + "\n"


def speed_method(results):
    """Say how speed.json's training rows were timed."""
    if "rounds" not in results:
        return (
            "Each training row a single run, neither warmed up nor interleaved "
            "(written by an earlier bench/speed.py)"
        )
    return (
        f"Each training row: a warm-up run, then the best of {results['rounds']} "
        "runs interleaved with the others"
    )


def speed_table(results):
    """Return the README section of bench/results/speed.json."""
    machine = results["machine"]
    flags = ", ".join(machine.get("cpu_flags", [])) or "not recorded"
    gflops = results["matmul_gflops"]
    lines = [
        machine_line(machine, "bench/speed.py"),
        f"CPU flags: {flags}; matmul {gflops['fp32']:.0f} GFLOP/s in float32, "
        f"{gflops['bf16']:.1f} in bfloat16. {speed_method(results)}, "
        f"{results['epochs']} epochs on {results['data']}.",
        "",
        "| | samples/s | x chapter loop | % of matmul limit |",
        "|---|---|---|---|",
    ]
    for row in results["rows"]:
        percent = row["percent_of_limit"]
        note = f" ({row['note']})" if row["note"] else ""
        lines.append(
            f"| {row['name']}{note} | {row['samples_per_s']:,.0f} "
            f"| {row['ratio_to_chapter']:.2f} "
            f"| {'' if percent is None else f'{percent:.0f}%'} |"
        )
    return "\n".join(lines) + "\n"


def load_line(machine):
    """Return the CPU flags and the load average a benchmark recorded."""
    flags = ", ".join(machine.get("cpu_flags", [])) or "not recorded"
    load = machine.get("load_average")
    busy = "" if load is None else f"; load average {load[0]:.1f} at the end"
    return f"CPU flags: {flags}{busy}."


def impute_rows(results):
    """Return [data, missing, imputer, RMSE, x KNN, seconds] rows of impute.json."""
    knn = {
        (row["data"], row["missing"]): row["rmse"]
        for row in results["rows"]
        if row["imputer"] == "KNN"
    }
    rows = []
    for row in [*results["rows"], results["full"]]:
        reference = knn.get((row["data"], row["missing"]))
        rows.append(
            [
                row["data"],
                f"{row['missing']:.0%}",
                row["imputer"] + (f" (kept: {row['kept']})" if row.get("kept") else ""),
                f"{row['rmse']:.3f}",
                "" if reference is None else f"{row['rmse'] / reference:.2f}",
                f"{row['seconds']:.1f}",
            ]
        )
    return rows


def impute_summary(results):
    """Say how the autoencoder's RMSE and time compare with KNNImputer's."""
    ours = [r for r in results["rows"] if r["imputer"] == "autoencoder"]
    knn = {
        (r["data"], r["missing"]): r for r in results["rows"] if r["imputer"] == "KNN"
    }
    items = []
    for row in ours:
        reference = knn[(row["data"], row["missing"])]
        ratio = row["rmse"] / reference["rmse"]
        kept = f" (it kept the {row['kept']} model)" if row.get("kept") else ""
        items.append(
            f"{row['data']}, {row['missing']:.0%} missing: "
            f"{ratio:.2f} times KNNImputer's RMSE{kept}, in "
            f"{row['seconds']:.1f} s against its {reference['seconds']:.1f} s."
        )
    full = results["full"]
    slowest = max(
        (
            r
            for r in results["rows"]
            if r["imputer"] == "KNN"
            and "fashion" in r["data"]
            and r["missing"] == full["missing"]
        ),
        key=lambda r: r["n_samples"],
    )
    faster = "less" if full["seconds"] < slowest["seconds"] else "more"
    items.append(
        f"{full['data']}, 20% missing: RMSE {full['rmse']:.3f} in "
        f"{full['seconds']:.0f} s, {faster} time than KNNImputer's "
        f"{slowest['seconds']:.0f} s on {slowest['n_samples']:,} images."
    )
    if results.get("rows_note"):
        items.append(f"The rows above the last: {results['rows_note']}.")
    return items


def impute_table(results):
    """Return the README section of bench/results/impute.json."""
    lines = [
        machine_line(results["machine"], "bench/impute.py"),
        load_line(results["machine"]),
        "RMSE on the entries hidden completely at random; x KNN: RMSE over "
        "KNNImputer's; seconds of fit and transform.",
        "",
        "| data | missing | imputer | RMSE | x KNN | seconds |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in impute_rows(results)]
    lines += [""] + [f"- {item}" for item in impute_summary(results)]
    return "\n".join(lines) + "\n"


def sparse_lines(results):
    """Return the sentences that describe bench/results/sparse.json."""
    mb = 2**20
    extra = max(results["fit_extra_bytes"], results["transform_extra_bytes"])
    return [
        f"Data: {results['data']}, {results['nnz']:,} non-zeros, "
        f"{results['csr_bytes'] / mb:,.0f} MB as CSR. Model: `{results['model']}`.",
        f"Fit: {results['fit_seconds']:.0f} s "
        f"({results['fit_rows_per_second']:,.0f} rows/s over its epochs); "
        f"transform: {results['transform_rows_per_second']:,.0f} rows/s.",
        f"Peak memory above the CSR matrix: {extra / mb:,.0f} MB.",
        f"Reconstruction error on 2,000 rows: {results['mse']:.3g}, "
        f"{results['mse_ratio']:.3f} times TruncatedSVD(50)'s "
        f"({results['svd_mse']:.3g}, fitted in {results['svd_seconds']:.0f} s).",
    ]


def sparse_table(results):
    """Return the README section of bench/results/sparse.json."""
    lines = [
        machine_line(results["machine"], "bench/sparse.py"),
        load_line(results["machine"]),
        "",
    ]
    lines += [f"- {line}" for line in sparse_lines(results)]
    return "\n".join(lines) + "\n"


def budget_rows(results):
    """Return (header, rows) of bench/results/budget.json, as cell strings."""
    header = ["k", "budget s", "precision", "epochs", "fit s", "AE / PCA"]
    rows = []
    for row in results["rows"]:
        rows.append(
            [
                str(row["n_components"]),
                str(row["budget_seconds"]),
                row["precision"],
                str(row["n_iter"]),
                f"{row['fit_seconds']:.1f}",
                f"{row['ratio']:.3f}",
            ]
        )
    return header, rows


def budget_method(results):
    """Say where and how bench/budget.py measured, as sentences."""
    machine = results["machine"]
    flags = ", ".join(machine.get("cpu_flags", [])) or "none"
    loads = [row["load_average"] for row in results["rows"]]
    bfloat16 = (
        "native bfloat16"
        if results["native_bfloat16"]
        else "no native bfloat16, so float32 only"
    )
    return (
        f"CPU flags: {flags} ({bfloat16}). Fashion-MNIST, "
        f"{results['n_train']:,} training and {results['n_test']:,} test images; "
        "the defaults with `max_time` set (and `max_iter=1000`); AE / PCA: test "
        "MSE as a fraction of PCA's at the same k. One fit per row (a budget is "
        "a time: a best of several would measure something else); load average "
        f"{min(loads):.1f} to {max(loads):.1f} during the fits."
    )


def budget_table(results):
    """Return the README section of bench/results/budget.json."""
    header, rows = budget_rows(results)
    lines = [
        machine_line(results["machine"], "bench/budget.py"),
        budget_method(results),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines) + "\n"


def variance_table(results):
    """Return the README section of bench/results/variance_sample.json."""
    lines = [
        machine_line(results["machine"], "bench/variance_sample.py")
        + f" It ran `{results['command']}`: {results['n_train']:,} training and "
        f"{results['n_test']:,} test digits. n: the width each needs; explained "
        "variance of the test digits; the autoencoder's search: widths fitted "
        "and seconds.",
        "",
        "| fraction | PCA n | AE n | AE / PCA | PCA test | AE test | fits | search s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['fraction']} | {row['pca_n_components']} "
            f"| {row['autoencoder_n_components']} | {row['width_vs_pca']:.2f} "
            f"| {row['pca_test_explained_variance']:.4f} "
            f"| {row['autoencoder_test_explained_variance']:.4f} "
            f"| {row['search_fits']} | {row['search_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


# Section name -> (results file under bench/results/, function rendering it).
# README.md holds one: the rest are on the documentation's Benchmarks page,
# which docs/conf.py generates (from these functions where it can).
TABLES = {
    "quality": ("quality.json", quality_table),
}


def render(readme_text, results_dir=RESULTS):
    """Return `readme_text` with every marked section generated afresh.

    Raises SystemExit when a section has no table of that name, or when a
    table has no section in the README.
    """
    seen = set()

    def generate(match):
        name = match["name"]
        if name not in TABLES:
            raise SystemExit(f"README section table:{name} has no generator")
        seen.add(name)
        filename, make = TABLES[name]
        body = make(json.loads((Path(results_dir) / filename).read_text()))
        return f"<!-- table:{name}:start -->\n{body}<!-- table:{name}:end -->"

    text = SECTION.sub(generate, readme_text)
    missing = set(TABLES) - seen
    if missing:
        raise SystemExit(f"README has no section for table(s) {sorted(missing)}")
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 on a difference"
    )
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    text = args.readme.read_text()
    new_text = render(text, args.results)
    if new_text == text:
        return 0
    if args.check:
        print(
            f"{args.readme}'s generated tables differ from {args.results}: run "
            "`python scripts/readme_tables.py` and commit the result",
            file=sys.stderr,
        )
        return 1
    args.readme.write_text(new_text)
    print(f"wrote the generated tables of {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
