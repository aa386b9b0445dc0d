"""Sphinx configuration of skae's documentation site (``make docs``)."""

import json
import os
import sys
from importlib.metadata import version as package_version
from pathlib import Path

project = "skae"
author = "the skae developers"
copyright = "2026, the skae developers"
release = package_version("skae")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Every public docstring must document its parameters and what it returns;
# classes and functions also need See Also and Examples (methods are shown by
# their class's examples).
numpydoc_validation_checks = {"PR01", "PR02", "PR03", "RT01", "GL08", "SA01", "EX01"}
numpydoc_validation_exclude = {
    r"\.__repr__$",
    r"\.__call__$",
    r"\.MLPAutoencoder\.\w+$",
    r"\.AutoencoderImputer\.\w+$",
}

# Intersphinx needs the network to fetch the inventories; CI and this project's
# machines have none, so cross-references to other projects are built only
# with SKAE_DOCS_ONLINE=1 (they render as plain text otherwise).
intersphinx_mapping = {}
if os.environ.get("SKAE_DOCS_ONLINE") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "sklearn": ("https://scikit-learn.org/stable/", None),
        "torch": ("https://docs.pytorch.org/docs/stable/", None),
    }

html_theme = "pydata_sphinx_theme"
html_title = "skae"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # The Dask example starts worker processes: shown, not run, in the build.
    "filename_pattern": r"/(plot_(?!dask)|quickstart)",
    "download_all_examples": False,
    "remove_config_comments": True,
    "default_thumb_file": None,
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
}
os.environ.setdefault("SKAE_EXAMPLES_FAST", "1")


# Tables generated from the benchmarks' JSON results, so that the pages show
# exactly what the last `make bench` measured.
ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "bench" / "results"
GENERATED = Path(__file__).parent / "_generated"


def _table(header, rows):
    """Return a reStructuredText list-table."""
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    return "\n".join(lines) + "\n"


def _quality_table():
    # The summary is README.md's, from the same results.
    sys.path.insert(0, str(ROOT / "scripts"))
    from readme_tables import machine_line, quality_summary

    results = json.loads((RESULTS / "quality.json").read_text())
    machine = results["machine"]
    rows = [
        [
            row["dataset"],
            row["n_components"],
            f"{row['pca_mse']:.5f}",
            f"{row['autoencoder_mse']:.5f}",
            f"{row['ratio']:.3f}",
            f"{row['pca_fit_seconds']:.1f}",
            f"{row['autoencoder_fit_seconds']:.1f}",
        ]
        for row in results["rows"]
    ]
    header = ["data", "k", "PCA MSE", "AE MSE", "AE / PCA", "PCA s", "AE s"]
    return (
        machine_line(machine, "bench/quality.py").replace("`", "``")
        + "\n\nMSE: mean squared reconstruction error per pixel on the test images; "
        "s: seconds to fit; AE: the default ``MLPAutoencoder``.\n\n"
        + _table(header, rows)
        + "".join(f"\n- {item}\n" for item in quality_summary(results))
    )


def _speed_table():
    sys.path.insert(0, str(ROOT / "scripts"))
    from readme_tables import speed_method

    results = json.loads((RESULTS / "speed.json").read_text())
    machine = results["machine"]
    rows = []
    for row in results["rows"]:
        percent = row["percent_of_limit"]
        rows.append(
            [
                row["name"] + (f" ({row['note']})" if row["note"] else ""),
                f"{row['samples_per_s']:,.0f}",
                f"{row['ratio_to_chapter']:.2f}",
                "" if percent is None else f"{percent:.0f}%",
            ]
        )
    scaling = ", ".join(
        f"{int(size):,} rows {row['seconds_per_epoch']:.2f} s"
        for size, row in results["epoch_scaling"].items()
    )
    memmap = results["memmap_transform"]
    gflops = results["matmul_gflops"]
    return (
        f"Measured {machine['date']} on {machine['platform']} "
        f"({machine['cpu_capability']}, {machine['torch_threads']} threads; CPU "
        f"flags {', '.join(machine.get('cpu_flags', [])) or 'not recorded'}), "
        f"torch {machine['torch']}; fp32 matmul {gflops['fp32']:.0f} GFLOP/s, "
        f"bf16 {gflops['bf16']:.1f} GFLOP/s; {results['epochs']} epochs. "
        f"{speed_method(results)}.\n\n"
        + _table(["", "samples/s", "x chapter loop", "% of limit"], rows)
        + "".join(
            f"\n- {name}: {ratio:.2f}\n"
            for name, ratio in results.get("ratios", {}).items()
        )
        + f"\nTime per epoch, chapter's model: {scaling}.\n"
        + (
            ""
            if memmap is None
            else f"Transforming {memmap['rows']:,} rows from a numpy memmap took "
            f"{memmap['extra_memory_mb']:.0f} MB of extra memory at its peak, for "
            f"an output of {memmap['output_mb']:.0f} MB.\n"
        )
    )


def _dask_table():
    results = json.loads((RESULTS / "dask_scale.json").read_text())
    rates = results["transform_rows_per_s"]
    rows = [
        [
            how.replace("_", " "),
            f"{rates['1'][how]:,.0f}",
            f"{rates['2'][how]:,.0f}",
            f"{rates['2'][how] / rates['1'][how]:.2f}",
        ]
        for how in ("scattered", "per_task")
    ]
    memmap = results["memmap_partial_fit"]
    return (
        f"Measured {results['date']} with ``python bench/dask_scale.py``, on one "
        "and on two local worker processes; transform of the chapter's model, "
        "rows/s:\n\n"
        + _table(["model shipped", "1 worker", "2 workers", "ratio"], rows)
        + f"\nOne partial_fit pass over a {memmap['file_mb']:.0f} MB memmap in "
        f"{memmap['chunk_mb']:.0f} MB chunks peaked at "
        f"{memmap['peak_extra_memory_mb']:.0f} MB of extra memory "
        f"({memmap['rows_per_s']:,.0f} rows/s).\n"
    )


def _distributed_table():
    results = json.loads((RESULTS / "distributed.json").read_text())
    one = results["runs"][0]
    rows = [
        [
            str(run["processes"]),
            str(run["threads_per_process"]),
            f"{run['seconds']:.2f}",
            f"{run['samples_per_s']:,.0f}",
            f"{run['samples_per_s'] / one['samples_per_s']:.2f}",
        ]
        for run in results["runs"]
    ]
    return (
        _measured_by(results["machine"], "bench/distributed.py")
        + f". {results['data']}, ``{results['model']}``, device "
        f"{results['device']}, backend {results['backend']}; best of "
        f"{results['rounds']} interleaved runs after a warm-up:\n\n"
        + _table(
            ["processes", "threads each", "seconds", "samples/s", "x 1 process"], rows
        )
    )


def _onnx_table():
    results = json.loads((RESULTS / "onnx.json").read_text())
    machine = results["machine"]
    best = {
        (row["model"], row["runtime"], row["batch_size"]): row
        for row in results["rows"]
    }
    rows = []
    for model, python in [
        ("chapter", "skae"),
        ("defaults", "skae"),
        ("PCA 100", "scikit-learn"),
        ("PCA 30", "scikit-learn"),
    ]:
        for batch_size in sorted({key[2] for key in best}):
            own = best[model, python, batch_size]
            served = best[model, "onnxruntime", batch_size]
            rows.append(
                [
                    model,
                    f"{batch_size:,}",
                    f"{own['rows_per_s']:,.0f}",
                    f"{served['rows_per_s']:,.0f}",
                    f"{own['seconds_per_call'] / served['seconds_per_call']:.2f}",
                    f"{own['seconds_per_call'] * 1e6:,.0f}",
                    f"{served['seconds_per_call'] * 1e6:,.0f}",
                ]
            )
    flags = ", ".join(machine["cpu_flags"]) or "no AVX-512"
    load = machine["load_average_1min"]
    threads = machine["onnxruntime_threads"]
    header = [
        "model",
        "batch",
        "transform rows/s",
        "onnxruntime rows/s",
        "speed-up",
        "transform µs/call",
        "onnxruntime µs/call",
    ]
    return (
        f"Measured {machine['date']} with ``python bench/onnx_speed.py`` on "
        f"{machine['platform']}, {machine['cpu_count']} cores ({flags}), "
        f"{threads} thread{'' if threads == 1 else 's'} each for torch and "
        "onnxruntime, "
        f"onnxruntime {machine['onnxruntime']}, torch {machine['torch']}, "
        f"scikit-learn {machine['sklearn']}; {results['data']}; load average "
        f"{load[0]:.1f} before and {load[1]:.1f} after timing, from other work on "
        "the same cores. The speed-up is the estimator's own transform time "
        "(skae's, or scikit-learn's for PCA) over onnxruntime's.\n\n"
        + _table(header, rows)
    )


def _sizing_table():
    results = json.loads((RESULTS / "sizing.json").read_text())
    machine = results["machine"]
    rows = [
        [
            row["fraction"],
            row["pca_n_components"],
            row.get("pca_held_out_n_components", ""),
            row["pca_test_n_components"],
            row["autoencoder_n_components"],
            f"{row['autoencoder_explained_variance']:.4f}",
            f"{row['autoencoder_test_explained_variance']:.4f}",
            f"{row['pca_test_explained_variance']:.4f}",
            row["search_fits"],
            f"{row['search_seconds']:.0f}",
        ]
        for row in results["rows"]
    ]
    header = [
        "fraction",
        "PCA n",
        "PCA n (held-out)",
        "PCA n (test)",
        "AE n",
        "AE held-out",
        "AE test",
        "PCA test",
        "fits",
        "search s",
    ]
    flags = ", ".join(machine["cpu_flags"]) or "no AVX-512"
    subset = (
        f"the first {results['n_train']:,} of the {results['n_train_available']:,} "
        "training images"
        if results["n_train"] < results["n_train_available"]
        else f"all {results['n_train']:,} training images"
    )
    return (
        f"Measured {machine['date']} with ``python bench/sizing.py`` on "
        f"{machine['platform']}, {machine['cpu_count']} cores ({flags}), torch "
        f"{machine['torch']}, scikit-learn {machine['sklearn']}; Fashion-MNIST, "
        f"fitted on {subset}, tested on the 10,000 test images."
        + (
            f" Each search had a time budget of {results['max_time']:g} seconds "
            "(``max_time``, shared among the widths it fitted)."
            if results.get("max_time")
            else " Every width trained the default 18 epochs."
        )
        + (
            f" The fits trained in {precision} (``precision={precision!r}``)."
            if (precision := results.get("precision", "float32")) != "float32"
            else ""
        )
        + (
            f" Load average {load[0]:.1f} before and {load[1]:.1f} after, from "
            "other work on the same cores."
            if (load := results.get("load_average_1min"))
            else ""
        )
        + "\n\n"
        + _table(header, rows)
        + "".join(f"\n- {line}\n" for line in _sizing_verdicts(results))
    )


def _sizing_verdicts(results):
    """One sentence per fraction: widths on the same rows, seconds."""
    lines = []
    for row in results["rows"]:
        pca = row.get("pca_held_out_n_components") or row["pca_n_components"]
        ae = row["autoencoder_n_components"]
        seconds = row["search_seconds"]
        lines.append(
            f"At {row['fraction']}: the autoencoder needs {ae} components where "
            f"PCA needs {pca} on the same held-out rows ({ae / pca:.2f}x). "
            f"The search fitted {row['search_fits']} widths in {seconds:.0f} s."
        )
    return lines


def _onnx_one_row():
    """Return the single-row and largest-batch speed-ups as a sentence."""
    results = json.loads((RESULTS / "onnx.json").read_text())
    seconds = {
        (row["model"], row["runtime"], row["batch_size"]): row["seconds_per_call"]
        for row in results["rows"]
    }
    largest = max(key[2] for key in seconds)
    one, many = [], []
    for model in ("chapter", "defaults"):
        one.append((seconds[model, "skae", 1], seconds[model, "onnxruntime", 1]))
        many.append(
            seconds[model, "skae", largest] / seconds[model, "onnxruntime", largest]
        )
    speedups = [own / served for own, served in one]
    return (
        "On one row, what a serving endpoint sees, onnxruntime answered "
        f"{min(speedups):.1f} to {max(speedups):.1f} times sooner than "
        f"``transform`` ({min(s for _, s in one) * 1e6:.0f} to "
        f"{max(s for _, s in one) * 1e6:.0f} µs against "
        f"{min(s for s, _ in one) * 1e6:.0f} to {max(s for s, _ in one) * 1e6:.0f} "
        f"µs for the two autoencoders); on {largest:,} rows it was "
        f"{min(many):.2f} to {max(many):.2f} times as fast.\n"
    )


def _never_worse_table():
    results = json.loads((RESULTS / "never_worse.json").read_text())
    machine = results["machine"]
    strategies = list(results["strategies"])
    groups = {}
    for row in results["rows"]:
        groups.setdefault((row["data"], row["n_components"]), []).append(row)

    def worst(runs, name):
        run = max(runs, key=lambda r: r["ratios"][name])
        if name != "default":
            return f"{run['ratios'][name]:.3f}"
        return f"{run['ratios'][name]:.3f} ± {run['standard_errors'][name]:.3f}"

    rows = [
        [
            data,
            str(k),
            *(worst(runs, name) for name in strategies),
            f"{sum(r['returned_pca'] for r in runs)} of {len(runs)}",
            f"{max(r['fit_seconds'] for r in runs):.2f}",
        ]
        for (data, k), runs in groups.items()
    ]
    counts = {
        "small": sum(
            row["n_train"] <= results["small_rows"] for row in results["rows"]
        ),
        "all": len(results["rows"]),
    }
    labels = {
        "small": f"training rows up to {results['small_rows']:,}",
        "all": "every set",
    }
    summary = _table(
        ["sets (fits)", "way of deciding", "worst", "median", "lost", "won"],
        [
            [
                f"{labels[group]} ({counts[group]})",
                name,
                f"{values['worst']:.3f}",
                f"{values['median']:.3f}",
                str(values["losses beyond 2 SE"]),
                str(values["wins beyond 2 SE"]),
            ]
            for group, by_strategy in results["summary"].items()
            for name, values in by_strategy.items()
        ],
    )
    best = results["best possible median"]
    return (
        _measured_by(machine, "bench/never_worse.py")
        + f"; {results['seeds']} seeds. Over every fit, the worst and median "
        "test error as a fraction of PCA's, and how many fits lost or won "
        "against PCA by more than two standard errors of the test rows (and "
        "more than float32 rounding):\n\n"
        + summary
        + "\nThe median of the best ratio any of them, or PCA, reached on each "
        f"fit: {best['small']:.3f} on the small sets, {best['all']:.3f} on every "
        "set. Per data set and width, the worst seed of each way of deciding "
        "(the default's with its standard error over the test rows), how many "
        "default fits returned PCA, and the slowest default fit's seconds:\n\n"
        + _table(
            [
                "data",
                "k",
                *(f"{name} (worst)" for name in strategies),
                "default returned PCA",
                "default fit s (max)",
            ],
            rows,
        )
    )


def _impute_table():
    sys.path.insert(0, str(ROOT / "scripts"))
    from readme_tables import impute_rows, impute_summary, load_line, machine_line

    results = json.loads((RESULTS / "impute.json").read_text())
    header = ["data", "missing", "imputer", "RMSE", "x KNN", "seconds"]
    return (
        machine_line(results["machine"], "bench/impute.py").replace("`", "``")
        + " "
        + load_line(results["machine"])
        + "\n\n"
        + _table(header, impute_rows(results))
        + "".join(f"\n- {item}\n" for item in impute_summary(results))
    )


def _sparse_table():
    sys.path.insert(0, str(ROOT / "scripts"))
    from readme_tables import load_line, machine_line, sparse_lines

    results = json.loads((RESULTS / "sparse.json").read_text())
    return (
        machine_line(results["machine"], "bench/sparse.py").replace("`", "``")
        + " "
        + load_line(results["machine"])
        + "\n"
        + "".join(f"\n- {line.replace('`', '``')}\n" for line in sparse_lines(results))
    )


def _budget_table():
    sys.path.insert(0, str(ROOT / "scripts"))
    from readme_tables import budget_method, budget_rows, machine_line

    results = json.loads((RESULTS / "budget.json").read_text())
    header, rows = budget_rows(results)
    return (
        machine_line(results["machine"], "bench/budget.py").replace("`", "``")
        + " "
        + budget_method(results).replace("`", "``")
        + "\n\n.. image:: /../bench/results/budget.png\n"
        + "   :alt: Test error as a fraction of PCA's against seconds of fitting\n\n"
        + _table(header, rows)
    )


def _start_table():
    results = json.loads((RESULTS / "start.json").read_text())
    machine = results["machine"]
    rows = []
    for row in results["rows"]:
        rows.append(
            [
                row["data"],
                str(row["n_components"]),
                f"{row['variant']} ({row['pca_path_lr_scale']:g}x)",
                str(row["first_better_epoch"] or "never"),
                str(row["epochs_worse_than_start"]),
                f"{row['ratio']:.3f}",
            ]
        )
    return (
        _measured_by(machine, "bench/start.py")
        + f": {results['max_iter']} epochs each; Fashion-MNIST on its first "
        f"{results['train_size']:,} training images. PCA paths' rate: full, or "
        "the default fraction of it.\n\n"
        + _table(
            [
                "data",
                "k",
                "PCA paths' rate",
                "first epoch better than the start",
                "epochs worse than the start",
                "test MSE / PCA",
            ],
            rows,
        )
    )


def _measured_by(machine, script):
    """Return "Measured DATE with python SCRIPT on N cores (FLAGS), torch V"."""
    flags = ", ".join(machine["cpu_flags"]) or "no AVX-512"
    return (
        f"Measured {machine['date']} with ``python {script}`` on "
        f"{machine['cpu_count']} cores ({flags}), torch {machine['torch']}"
    )


def _bf16_paths_table():
    results = json.loads((RESULTS / "bf16_paths.json").read_text())
    machine = results["machine"]
    rows = [
        [
            row["model"],
            row["variant"],
            f"{row['samples_per_s']:,.0f}",
            f"{row['vs_float32']:.2f}",
            ""
            if row["autocast_cast_share"] is None
            else f"{row['autocast_cast_share']:.0%}",
        ]
        for row in results["rows"]
    ]
    return (
        _measured_by(machine, "bench/bf16_paths.py")
        + "; one training step of batch 256, best of several, the variants "
        "interleaved.\n\n"
        + _table(
            ["model", "training", "samples/s", "x float32", "casts (profiler)"], rows
        )
    )


def _batch_invariance_table():
    results = json.loads((RESULTS / "batch_invariance.json").read_text())
    rows = [
        [
            row["way"],
            row["rows"],
            f"{row['seconds'] * 1e3:,.2f}",
            f"{row['vs_plain_batches']:.2f}",
            f"{row['bit_equal_of_20']} of 20",
        ]
        for row in results["rows"]
    ]
    return (
        _measured_by(results["machine"], "bench/batch_invariance.py")
        + f"; chunks of {results['chunk_rows']} rows against plain batches of "
        f"{results['plain_batch_rows']:,}, interleaved, best of "
        f"{results['rounds']}. The last column counts the rows whose code alone "
        "has the same bits as inside 1,000 rows.\n\n"
        + _table(["inference", "rows", "ms", "x plain batches", "same bits"], rows)
    )


def _bf16_quality_table():
    results = json.loads((RESULTS / "bf16_quality.json").read_text())
    rows = [
        [
            row["n_components"],
            f"{row['test_mse_float32']:.5f}",
            f"{row['test_mse_bfloat16']:.5f}",
            f"{row['error_ratio']:.4f}",
            f"{row['fit_seconds_float32']:.1f}",
            f"{row['fit_seconds_bfloat16']:.1f}",
            f"{row['speedup']:.2f}",
        ]
        for row in results["rows"]
    ]
    return (
        _measured_by(results["machine"], "bench/bf16_quality.py")
        + "; test mean squared error on the 10,000 test images after a default "
        "fit on the 60,000 training images.\n\n"
        + _table(
            [
                "k",
                "MSE float32",
                "MSE bfloat16",
                "x float32",
                "fit s float32",
                "fit s bfloat16",
                "speed-up",
            ],
            rows,
        )
    )


def _profile_table():
    results = json.loads((RESULTS / "profile.json").read_text())
    fits = results["fits"]
    labels = list(fits[0]["phases"])
    header = ["phase (s)"] + [
        f"{fit['precision']}, early stopping {fit['early_stopping']}" for fit in fits
    ]
    rows = [
        [label, *(f"{fit['phases'][label]:.3f}" for fit in fits)] for label in labels
    ]
    rows.append(["whole fit", *(f"{fit['total']:.3f}" for fit in fits)])
    steps = results["steps_taken_apart"]
    parts = list(steps[0]["parts"])
    step_header = ["step part (ms)"] + [
        f"{step['model']}, {step['precision']}" for step in steps
    ]
    step_rows = [
        [part, *(f"{step['parts'][part] * 1e3:.3f}" for step in steps)]
        for part in parts
    ]
    step_rows.append(
        [
            "whole step",
            *(f"{sum(step['parts'].values()) * 1e3:.3f}" for step in steps),
        ]
    )
    return (
        _measured_by(results["machine"], "bench/profile_fit.py")
        + f"; {results['data']}, {results['epochs']} epochs per fit, "
        f"{results['steps']} steps per pass. {results['method']}.\n\n"
        + _table(header, rows)
        + "\n"
        + _table(step_header, step_rows)
    )


def _variance_table():
    sys.path.insert(0, str(ROOT / "scripts"))
    from readme_tables import machine_line

    results = json.loads((RESULTS / "variance_sample.json").read_text())
    header = [
        "fraction",
        "PCA n",
        "AE n",
        "AE / PCA",
        "PCA test",
        "AE test",
        "fits",
        "search s",
    ]
    rows = [
        [
            row["fraction"],
            row["pca_n_components"],
            row["autoencoder_n_components"],
            f"{row['width_vs_pca']:.2f}",
            f"{row['pca_test_explained_variance']:.4f}",
            f"{row['autoencoder_test_explained_variance']:.4f}",
            row["search_fits"],
            f"{row['search_seconds']:.0f}",
        ]
        for row in results["rows"]
    ]
    return (
        machine_line(results["machine"], "bench/variance_sample.py").replace("`", "``")
        + f" It ran ``{results['command']}``: {results['n_train']:,} training and "
        f"{results['n_test']:,} test digits. n: the width each needs; explained "
        "variance of the test digits; the autoencoder's search: widths fitted and "
        "seconds.\n\n" + _table(header, rows)
    )


def _file_integrity_table():
    results = json.loads((RESULTS / "file_integrity.json").read_text())
    model = results["model"]
    rows = [
        ["load", f"{seconds:.3f}", way] for way, seconds in results["load_s"].items()
    ] + [["save", f"{seconds:.3f}", way] for way, seconds in results["save_s"].items()]
    return (
        _measured_by(
            {**results["machine"], "cpu_flags": results["cpu_hash_flags"]},
            "bench/file_integrity.py",
        )
        + f"; a {model['file_mb']:.0f} MB model, best of {results['repeats']}; "
        f"load average {results['load_average_1min_at_start']:.1f} at the start, "
        "from other work on the same cores (no core free for the hash). Loading "
        f"with the digest took {results['load_ratio']:.2f}x the time without, "
        f"saving {results['save_ratio']:.2f}x.\n\n"
        + _table(["", "seconds", "how"], rows)
    )


def _promises_table():
    sys.path.insert(0, str(ROOT / "scripts"))
    from promises import rst, table

    rows, unknown = table()
    if unknown:
        raise ValueError(f"# promise: markers that name no section: {unknown}")
    return rst(rows)


GENERATED.mkdir(exist_ok=True)
for _name, _make in [
    ("never_worse", _never_worse_table),
    ("bf16_quality_table", _bf16_quality_table),
    ("profile_table", _profile_table),
    ("variance_table", _variance_table),
    ("file_integrity_table", _file_integrity_table),
    ("quality_table", _quality_table),
    ("speed_table", _speed_table),
    ("dask_table", _dask_table),
    ("distributed_table", _distributed_table),
    ("onnx_table", _onnx_table),
    ("onnx_one_row", _onnx_one_row),
    ("sizing_table", _sizing_table),
    ("impute_table", _impute_table),
    ("sparse_table", _sparse_table),
    ("budget_table", _budget_table),
    ("start_table", _start_table),
    ("bf16_paths_table", _bf16_paths_table),
    ("batch_invariance_table", _batch_invariance_table),
    ("promises_table", _promises_table),
]:
    (GENERATED / f"{_name}.rst").write_text(_make())
