"""The ``skae`` command: train autoencoders, compare them to PCA, write a report."""

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import shutil
import signal
import stat
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

import skae
from skae import datasets
from skae._presets import PRESETS

NAMED_DATA = ("mnist-sample", "mnist", "fashion-mnist")
DEFAULT_N_COMPONENTS = (2, 30, 100)


class UsageError(Exception):
    """A problem with the command's arguments or inputs: exit status 2."""


class _Interrupted(BaseException):
    """Ctrl-C, raised past the estimator, which keeps a fit cut short.

    The estimator catches KeyboardInterrupt and keeps the epochs it finished, as
    MLPRegressor does; the command must stop instead.
    """


def main(argv=None):
    """Run the ``skae`` command line; return the exit status."""
    parser = _build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    if args.command is None:
        parser.print_help()
        return 2
    previous = _raise_interrupted_on_sigint()
    try:
        return _compare(args)
    except UsageError as error:
        parser.exit(2, f"skae: error: {error}\n")
    except (KeyboardInterrupt, _Interrupted):
        print("skae: interrupted; nothing was written.", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _raise_interrupted_on_sigint():
    """Make Ctrl-C raise _Interrupted; return the previous handler (or None)."""

    def interrupt(signum, frame):
        raise _Interrupted

    try:
        return signal.signal(signal.SIGINT, interrupt)
    except ValueError:
        # Not the main thread (e.g. main() called from a worker): keep Python's.
        return None


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="skae",
        description="Autoencoders next to PCA, on MNIST-like images.",
    )
    parser.add_argument("--version", action="version", version=skae.__version__)
    commands = parser.add_subparsers(dest="command")
    compare = commands.add_parser(
        "compare",
        help="train autoencoders and PCA, and report their reconstruction errors",
        description=(
            "Fit PCA and an MLPAutoencoder for each n_components on the training "
            "images, measure the reconstruction error on the test images, and "
            "write pictures, results.json and report.md to --out."
        ),
    )
    compare.add_argument(
        "--data",
        nargs="+",
        default=["mnist-sample"],
        metavar="SOURCE",
        help=(
            "mnist-sample (default: 5,000 digits shipped with skae), mnist "
            "(local cache or OpenML), fashion-mnist (Debian's package, cache or "
            "OpenML), or paths: a directory of MNIST CSV/IDX files, one file "
            "(split into train and test), or a training and a test file"
        ),
    )
    compare.add_argument(
        "--n-components",
        nargs="+",
        type=_positive_int,
        metavar="N",
        help="code widths to compare (default: 2 30 100, none with --variance)",
    )
    compare.add_argument(
        "--variance",
        nargs="+",
        type=_fraction,
        metavar="F",
        help=(
            "fractions of the variance, e.g. 0.8 0.9 0.95: the width PCA and the "
            "autoencoder each need to explain them"
        ),
    )
    compare.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="default",
        help=(
            "'chapter': the textbook's 784-256-128-k sigmoid model, Adam 0.01, "
            "batch 256, 10 epochs; 'default': skae's defaults"
        ),
    )
    compare.add_argument(
        "--max-iter", type=_positive_int, help="epochs (default: the preset's)"
    )
    compare.add_argument(
        "--max-time",
        type=_positive_seconds,
        metavar="SECONDS",
        help=(
            "training budget of each autoencoder fit, in seconds (of each width "
            "search with --variance); the learning-rate schedule is sized to it"
        ),
    )
    compare.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "auto"),
        help=(
            "arithmetic of training (default: the preset's, auto); auto: "
            "bfloat16 where the CPU or GPU has it natively and the training set "
            "has at least 10,000 rows, float32 elsewhere"
        ),
    )
    compare.add_argument(
        "--train-size",
        type=_positive_int,
        help="use only this many training images (a random subset)",
    )
    compare.add_argument(
        "--test-size",
        type=_positive_int,
        default=1000,
        help="test images held out when a source has no test split (default: 1000)",
    )
    compare.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    compare.add_argument(
        "--display-step",
        type=_positive_int,
        help="also save a grid of test reconstructions every this many epochs",
    )
    compare.add_argument(
        "--out", type=Path, default=Path("report"), help="output directory (report/)"
    )
    compare.add_argument(
        "--device", default="cpu", help="torch device: cpu, cuda, mps, auto (cpu)"
    )
    compare.add_argument("--no-progress", action="store_true", help="no progress bar")
    compare.add_argument(
        "--quiet", action="store_true", help="print only the final table"
    )
    return parser


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(
            f"{value} must be a fraction strictly between 0 and 1"
        )
    return value


def _compare(args):
    """Run ``skae compare``; every check that can fail happens before training."""
    plt = _import_extras()
    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning

    from skae import MLPAutoencoder
    from skae._sizing import check_measurable
    from skae.metrics import compare
    from skae.plotting import (
        plot_error_vs_components,
        plot_images,
        plot_latent,
        plot_loss_curve,
        plot_reconstructions,
    )

    X_train, _, X_test, y_test = _load_data(args)
    n_features = X_train.shape[1]
    widest = min(n_features, len(X_train))
    widths = args.n_components
    if widths is None:
        widths = [] if args.variance else list(DEFAULT_N_COMPONENTS)
    too_wide = [n for n in widths if n > widest]
    if too_wide:
        raise UsageError(
            f"--n-components {too_wide[0]} must be <= min(n_features={n_features}, "
            f"training images={len(X_train)}) = {widest}."
        )
    if args.variance and len(X_train) < 2:
        raise UsageError(
            "--variance needs at least 2 training images: one image has no "
            "variance to explain."
        )
    n_components_list = sorted(set(widths))
    fractions = sorted(set(args.variance or ()))
    params = dict(PRESETS[args.preset])
    if args.max_iter:
        params["max_iter"] = args.max_iter
    if args.max_time:
        params["max_time"] = args.max_time
        if not args.max_iter:
            # The budget decides the epochs, as max_time=60, max_iter=1000 does.
            params["max_iter"] = 1000
    if args.precision:
        params["precision"] = args.precision
    params.update(random_state=args.random_state, device=args.device)
    try:
        skae._torch_utils.resolve_device(args.device)
    except ValueError as error:
        raise UsageError(str(error)) from None
    for fraction in fractions:
        # Before any training: too few rows to measure a width on.
        try:
            check_measurable(
                MLPAutoencoder(**{**params, "n_components": fraction}), len(X_train)
            )
        except ValueError:
            raise UsageError(
                f"--variance {fraction} chooses the width by the variance "
                f"explained on the images early stopping holds out, and "
                f"--train-size {len(X_train)} leaves one: too few to decide "
                "between widths. Use --train-size 11 or more."
            ) from None
    out = args.out.resolve()
    _check_out(args.out, out)
    created, staging = _make_staging(args.out, out)

    if not args.quiet:
        print(
            f"data: {' '.join(args.data)}: {len(X_train)} training and "
            f"{len(X_test)} test images; preset: {args.preset}"
        )
    published = False
    try:
        models, table, sizing = {}, None, None
        if n_components_list:
            for n in n_components_list:
                models[f"PCA-{n}"] = PCA(n_components=n, random_state=args.random_state)
                models[f"AE-{n}"] = MLPAutoencoder(
                    **{**params, "n_components": n},
                    verbose=0 if args.quiet else (1 if args.no_progress else 2),
                    callbacks=_display_callbacks(
                        args, X_test, staging, n, plot_images, plt
                    ),
                )
            with warnings.catch_warnings():
                # The epochs are fixed by the preset: not converging is expected.
                warnings.simplefilter("ignore", ConvergenceWarning)
                table = compare(models, X_train, X_test, verbose=not args.quiet)
            table = _add_ratio_to_pca(table, models, X_test)
            print(("" if args.quiet else "\n") + _format_table(table))
            print(RATIO_NOTE.format(n_test=len(X_test)))

            pca_and_ae = {name: models[name] for name in models}
            fig = plot_reconstructions(X_test, pca_and_ae, n=10)
            fig.savefig(staging / "reconstructions.png", dpi=80)
            ax = plot_images(X_test, 3, 5, title="test images")
            ax.figure.savefig(staging / "originals.png", dpi=80)
            _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
            for n in n_components_list:
                plot_loss_curve(models[f"AE-{n}"], ax=ax, label=f"AE-{n}")
            ax.figure.savefig(staging / "loss_curve.png", dpi=80)
            ax = plot_error_vs_components(table)
            ax.figure.savefig(staging / "error_vs_components.png", dpi=80)
            if 2 in n_components_list:
                fig, axes = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
                for ax, name in zip(axes, ["AE-2", "PCA-2"], strict=True):
                    plot_latent(models[name], y_test, X=X_test, ax=ax)
                    ax.set_title(f"{name}: 2-D code of the test images")
                fig.savefig(staging / "latent_2d.png", dpi=80)
            plt.close("all")

        if fractions:
            sizing = _size_by_variance(
                args, params, fractions, X_train, X_test, staging, plt
            )
        results = _results_record(args, models, X_train, X_test, table, sizing)
        (staging / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        (staging / "report.md").write_text(
            _report_markdown(results, table, sizing, staging)
        )
        written = sorted(
            str(path.relative_to(staging))
            for path in staging.rglob("*")
            if path.is_file()
        )
        destination = _publish(staging, out, args.out)
        published = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not published:
            for folder in reversed(created):
                _remove_if_empty(folder)
    if not args.quiet:
        where = args.out if destination == out else destination
        print(f"\nwrote {len(written)} files to {where}/: {', '.join(written)}")
    return 0


def _display_callbacks(args, X_test, staging, n, plot_images, plt):
    """Save test reconstructions every k epochs, as the chapter's display_step."""
    if not args.display_step:
        return []
    step = args.display_step
    folder = staging / "progress"
    folder.mkdir(exist_ok=True)

    def save_grid(estimator, record):
        # A time budget may plan fewer epochs than max_iter.
        plan = estimator._state.plan
        last = record.epoch + 1 == (
            estimator.max_iter if plan is None else plan.last_epoch
        )
        if record.epoch % step == 0 or last:
            ax = plot_images(
                estimator.reconstruct(X_test[:15]),
                3,
                5,
                title=f"AE-{n}, epoch {record.epoch + 1}",
            )
            ax.figure.savefig(
                folder / f"AE-{n}_epoch{record.epoch + 1:03d}.png", dpi=80
            )
            plt.close(ax.figure)

    return [save_grid]


def _load_data(args):
    """Return X_train, y_train, X_test, y_test for --data, or raise UsageError."""
    sources = args.data
    try:
        if len(sources) == 1 and sources[0] in NAMED_DATA:
            name = sources[0]
            if name == "mnist-sample":
                X, y = datasets.load_mnist_sample()
                split = _split(X, y, args)
            else:
                loader = {
                    "mnist": datasets.load_mnist,
                    "fashion-mnist": datasets.load_fashion_mnist,
                }[name]
                split = (*loader(subset="train"), *loader(subset="test"))
        elif len(sources) == 1:
            path = Path(sources[0])
            if path.is_dir():
                split = (
                    *datasets.load_mnist(path, subset="train"),
                    *datasets.load_mnist(path, subset="test"),
                )
            else:
                split = _split(*datasets.load_mnist(path), args)
        elif len(sources) == 2:
            split = (
                *datasets.load_mnist(sources[0]),
                *datasets.load_mnist(sources[1]),
            )
        else:
            raise UsageError(
                "--data takes one source, or a training and a test file; got "
                f"{len(sources)}."
            )
    except (OSError, ValueError) as error:
        raise UsageError(str(error)) from None
    X_train, y_train, X_test, y_test = split
    if args.train_size and args.train_size > len(X_train):
        raise UsageError(
            f"--train-size {args.train_size} is more than the {len(X_train)} "
            "training images."
        )
    if args.train_size and args.train_size < len(X_train):
        keep = np.random.RandomState(args.random_state).permutation(len(X_train))
        keep = np.sort(keep[: args.train_size])
        X_train, y_train = X_train[keep], y_train[keep]
    return X_train, y_train, X_test, y_test


def _split(X, y, args):
    """Hold out --test-size images, stratified by label."""
    from sklearn.model_selection import train_test_split

    if args.test_size >= len(X):
        raise UsageError(
            f"--test-size {args.test_size} must be smaller than the {len(X)} images."
        )
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=args.test_size, random_state=args.random_state, stratify=y
        )
    except ValueError as error:
        labels = len(np.unique(y))
        raise UsageError(
            f"--test-size {args.test_size} cannot hold out the {labels} labels "
            f"of {len(X)} images in proportion (the split is stratified: "
            f"{error}). Use a --test-size of at least {labels}, on data with at "
            "least 2 images of each label."
        ) from None
    return X_train, y_train, X_test, y_test


RATIO_NOTE = (
    "vs PCA: test MSE / PCA's at the same n_components, ± its standard error over "
    "the {n_test} test images; a ratio within two standard errors of 1 is noise."
)


def _add_ratio_to_pca(table, models, X_test):
    """Add each model's test MSE divided by PCA's at the same n_components.

    With it goes its standard error over the test rows: that of the mean
    per-row difference of error (model minus PCA), as a fraction of PCA's mean
    error, as the fit's own test against PCA measures it. NaN on one test row.
    """
    from skae.metrics import _ratio_standard_error

    X_test = np.asarray(X_test, dtype=np.float64)
    errors = {
        name: np.mean(
            np.square(X_test - model.inverse_transform(model.transform(X_test))),
            axis=1,
        )
        for name, model in models.items()
    }
    pca_names = {
        row["n_components"]: name
        for name, row in table.iterrows()
        if row["model"] == "PCA"
    }
    ratios, standard_errors = [], []
    for name, row in table.iterrows():
        pca = pca_names[row["n_components"]]
        ratios.append(row["test_mse"] / table.loc[pca, "test_mse"])
        standard_errors.append(_ratio_standard_error(errors[name], errors[pca]))
    table = table.copy()
    table.insert(3, "mse_vs_pca", ratios)
    table.insert(4, "mse_vs_pca_se", standard_errors)
    return table


def _format_table(table):
    columns = {
        "n_components": "n_components",
        "model": "model",
        "test_mse": "test MSE",
        "mse_vs_pca": "vs PCA",
        "squared_error_per_image": "SE/image",
        "fit_seconds": "fit s",
        "transform_seconds": "transform s",
    }
    view = table[list(columns)].rename(columns=columns)
    view["vs PCA"] = [
        f"{ratio:.3f}" + ("" if math.isnan(se) or model == "PCA" else f" ± {se:.3f}")
        for ratio, se, model in zip(
            table["mse_vs_pca"], table["mse_vs_pca_se"], table["model"], strict=True
        )
    ]
    return view.to_string(
        index=False,
        formatters={
            "test MSE": "{:.5f}".format,
            "SE/image": "{:.2f}".format,
            "fit s": "{:.2f}".format,
            "transform s": "{:.3f}".format,
        },
    )


def _results_record(args, models, X_train, X_test, table, sizing):
    import sklearn
    import torch

    return {
        "command": shlex.join(["skae", *args.argv]),
        "data": args.data,
        "preset": args.preset,
        "models": {name: _resolved_params(model) for name, model in models.items()},
        "n_train": len(X_train),
        "n_test": len(X_test),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
        "versions": {
            "skae": skae.__version__,
            "torch": torch.__version__,
            "scikit-learn": sklearn.__version__,
            "python": platform.python_version(),
        },
        "results": (
            [] if table is None else table.reset_index().to_dict(orient="records")
        ),
        "variance": sizing,
    }


def _resolved_params(model):
    """Every parameter a fitted model ran with, "auto" values resolved."""
    params = {"class": type(model).__name__}
    for key, value in model.get_params(deep=False).items():
        if key == "callbacks":
            continue
        if isinstance(value, tuple):
            value = list(value)
        params[key] = value
    if hasattr(model, "_fit_svd_solver"):
        # PCA's resolved solver; its other "auto" values are scikit-learn's.
        params["svd_solver"] = model._fit_svd_solver
    if hasattr(model, "hidden_layer_sizes_"):
        params["device"] = str(next(model.encoder_.parameters()).device)
        params["hidden_layer_sizes"] = list(model.hidden_layer_sizes_)
        params["init"] = model._state.architecture["init"]
        params["early_stopping"] = model.validation_scores_ is not None
        if model.validation_scores_ is not None and model._state.history.split is None:
            # Scored out of fold: early_stopping="auto" cross-validated.
            params["early_stopping"] = "auto"
            params["decided_by"] = "5-fold cross-validation"
        params["n_iter_"] = model.n_iter_
        params["precision"] = model.precision_
    return params


def _report_markdown(results, table, sizing, staging):
    lines = [
        "# skae compare",
        "",
        f"Data: {' '.join(results['data'])} ({results['n_train']} training, "
        f"{results['n_test']} test images). Preset: {results['preset']}. "
        f"Date: {results['date']}.",
        "",
    ]
    if table is not None:
        lines += [
            "Test reconstruction error (MSE per pixel; SE/image is summed over the "
            "784 pixels):",
            "",
            "```",
            _format_table(table),
            "```",
            "",
            RATIO_NOTE.format(n_test=results["n_test"]),
            "",
        ]
    if sizing is not None:
        lines += [
            "How many components for a fraction of the variance: PCA's width "
            "on the training images, the autoencoder's on the rows its early "
            "stopping holds out (on the training images when it holds none "
            "out), each model's explained variance of the test images, and the "
            "seconds of the autoencoder's width search:",
            "",
            "```",
            _format_sizing(sizing),
            "```",
            "",
        ]
    pictures = [
        ("reconstructions.png", "Test images, then each model's reconstructions"),
        ("error_vs_components.png", "Test error against n_components"),
        ("variance_vs_components.png", "Explained variance against n_components"),
        ("loss_curve.png", "Autoencoder training loss per epoch"),
        ("latent_2d.png", "2-D codes of the test images"),
        ("originals.png", "Test images"),
    ]
    for filename, caption in pictures:
        if (staging / filename).exists():
            lines += [f"## {caption}", "", f"![{caption}]({filename})", ""]
    return "\n".join(lines)


# What a report of skae compare holds: these files, and PNGs (the display
# step's under progress/). A folder holding anything else is not replaced.
REPORT_FILES = ("results.json", "report.md")
REPORT_FOLDERS = ("progress",)


def _check_out(given, out):
    """Refuse an --out that cannot take the report, before any training.

    An existing folder is replaced whole, so it must be empty or hold a skae
    report and nothing else.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {given} exists and is not a directory.")
    here = Path.cwd().resolve()
    if out == here or out in here.parents:
        raise UsageError(
            f"--out {given} is the current folder or holds it, and skae compare "
            "replaces its --out as a whole: choose a folder for the report, "
            "e.g. --out report/."
        )
    if not out.is_dir() or not any(out.iterdir()):
        return
    advice = (
        "skae compare replaces its --out as a whole, so choose an empty or new folder"
    )
    if not _is_report_record(out / "results.json"):
        raise UsageError(
            f"--out {given} is a folder that holds files but no skae report "
            f"(a results.json written by skae compare); {advice}."
        )
    foreign = _foreign_entry(out)
    if foreign is not None:
        raise UsageError(
            f"--out {given} holds a skae report and also {foreign}, which no "
            f"report writes; {advice}, or move {foreign} out of it first."
        )


def _is_report_record(path):
    """Whether `path` is a results.json that skae compare wrote."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and str(record.get("command", "")).startswith(
        "skae compare"
    )


def _foreign_entry(out):
    """Return the first entry of a report folder that no report writes, or None."""
    for entry in sorted(out.iterdir()):
        if entry.is_symlink():
            return entry.name
        if entry.is_dir() and entry.name in REPORT_FOLDERS:
            inner = [
                p for p in entry.iterdir() if p.suffix != ".png" or not p.is_file()
            ]
            if inner:
                return f"{entry.name}/{sorted(inner)[0].name}"
        elif not entry.is_file() or (
            entry.name not in REPORT_FILES and entry.suffix != ".png"
        ):
            return entry.name
    return None


def _make_staging(given, out):
    """Create --out's missing parents and a staging folder beside it.

    Returns (the parents created, the staging folder); on failure removes the
    parents it created and raises UsageError, before any training.
    """
    created = []
    try:
        for folder in reversed(out.parents):
            if not folder.exists():
                folder.mkdir()
                created.append(folder)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        # mkdtemp makes it private (0700): the report takes the mode of the
        # folder it replaces, or a new folder's.
        if out.is_dir():
            staging.chmod(stat.S_IMODE(out.stat().st_mode))
        else:
            umask = os.umask(0)
            os.umask(umask)
            staging.chmod(0o777 & ~umask)
    except OSError as error:
        for folder in reversed(created):
            _remove_if_empty(folder)
        raise UsageError(
            f"--out {given} cannot be written: {error.strerror or error}."
        ) from None
    return created, staging


def _remove_if_empty(folder):
    try:
        folder.rmdir()
    except OSError:
        pass


def _publish(staging, out, given):
    """Put the finished report at `out` whole, replacing an earlier report whole.

    Two renames within one folder: the old report is moved aside, the new one
    takes its place, then the old one is deleted. A crash in between leaves
    the old report beside (``.NAME.old-*``), never a mix of the two. The
    folder is checked again first: if something was put in it during the run,
    it is left as it was and the report goes to a new folder beside it.
    Returns where the report went.
    """
    old = None
    if out.exists():
        try:
            _check_out(given, out)
        except UsageError as changed:
            beside = _new_sibling(out)
            os.replace(staging, beside)
            print(
                f"skae: {changed} It changed during the run, so it is left as "
                f"it was; the new report is in {beside}.",
                file=sys.stderr,
            )
            return beside
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
    try:
        os.replace(staging, out)
    except BaseException:
        if old is not None:
            os.replace(old / out.name, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


def _new_sibling(out):
    """Return a path beside `out` that does not exist yet: NAME-new, NAME-new-2..."""
    candidate, number = out.with_name(f"{out.name}-new"), 1
    while candidate.exists():
        number += 1
        candidate = out.with_name(f"{out.name}-new-{number}")
    return candidate


def _import_extras():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import pandas  # noqa: F401  (compare's table)
    except ImportError as error:
        raise UsageError(
            f"skae compare needs matplotlib and pandas ({error}): "
            "pip install 'skae[all]'."
        ) from None
    return plt


def _size_by_variance(args, params, fractions, X_train, X_test, staging, plt):
    """Fit PCA and the autoencoder for each fraction; print, plot, return the rows."""
    import time

    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning

    from skae import MLPAutoencoder
    from skae.metrics import explained_variance
    from skae.plotting import plot_explained_variance

    spectrum = PCA(svd_solver="full").fit(X_train)
    pca_curve = np.cumsum(spectrum.explained_variance_ratio_)
    rows, searches = [], {}
    for fraction in fractions:
        if not args.quiet:
            print(f"searching the width for {fraction} of the variance")
        # PCA's own rule for a float n_components.
        pca_width = min(
            int(np.searchsorted(pca_curve, fraction, side="right")) + 1,
            pca_curve.size,
        )
        pca = PCA(n_components=pca_width, svd_solver="full").fit(X_train)
        model = MLPAutoencoder(
            **{**params, "n_components": fraction},
            verbose=0 if args.quiet else 1,
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            # The epochs are fixed by the preset: not converging is expected.
            warnings.simplefilter("ignore", ConvergenceWarning)
            # A fraction missed is the table's "reached" column.
            warnings.filterwarnings("ignore", message=".* was not reached")
            model.fit(X_train)
        seconds = time.perf_counter() - start
        searches[fraction] = model.n_components_search_
        rows.append(
            {
                "fraction": fraction,
                # Whether the chosen width explains the fraction on the rows it
                # was measured on; fit warns when it does not.
                "reached": bool(model.explained_variance_score_ >= fraction),
                "pca_n_components": pca_width,
                "autoencoder_n_components": int(model.n_components_),
                "width_vs_pca": model.n_components_ / pca_width,
                "pca_test_explained_variance": explained_variance(pca, X_test),
                "autoencoder_explained_variance": model.explained_variance_score_,
                "autoencoder_test_explained_variance": explained_variance(
                    model, X_test
                ),
                "search_fits": len(model.n_components_search_),
                "search_seconds": seconds,
                "search": model.n_components_search_,
            }
        )
    print(("" if args.quiet else "\n") + _format_sizing(rows))
    ax = plot_explained_variance(spectrum, searches)
    ax.figure.savefig(staging / "variance_vs_components.png", dpi=80)
    plt.close(ax.figure)
    return rows


def _format_sizing(rows):
    """Return the printed table of `_size_by_variance`'s rows."""
    header = (
        f"{'fraction':>8} {'PCA n':>6} {'AE n':>5} {'AE/PCA':>6} "
        f"{'PCA test':>8} {'AE test':>8} {'AE held-out':>11} {'fits':>4} "
        f"{'search s':>8} {'reached':>7}"
    )
    lines = [header]
    for row in rows:
        lines.append(
            f"{row['fraction']:>8} {row['pca_n_components']:>6} "
            f"{row['autoencoder_n_components']:>5} {row['width_vs_pca']:>6.2f} "
            f"{row['pca_test_explained_variance']:>8.4f} "
            f"{row['autoencoder_test_explained_variance']:>8.4f} "
            f"{row['autoencoder_explained_variance']:>11.4f} "
            f"{row['search_fits']:>4} {row['search_seconds']:>8.1f} "
            f"{'yes' if row['reached'] else 'MISSED':>7}"
        )
    return "\n".join(lines)
