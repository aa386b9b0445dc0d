"""The ``skae`` command end to end, on small data."""

import json
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest

from skae._cli import main

from _helpers import FAST, run_compare


def leftovers(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))


# promise: README.md / The main job: is an autoencoder better than PCA?
# promise: failures.rst / The ``skae compare`` command
def test_compare_on_the_sample_writes_the_report(tmp_path, capsys):
    status, out = run_compare(tmp_path, "--n-components", "2", "5", *FAST)
    assert status == 0
    printed = capsys.readouterr().out
    assert "Epoch 2, loss = " in printed
    assert "fitting AE-5" in printed
    assert "vs PCA" in printed and "MLPAutoencoder" in printed
    expected = {
        "reconstructions.png",
        "originals.png",
        "loss_curve.png",
        "error_vs_components.png",
        "latent_2d.png",
        "results.json",
        "report.md",
    }
    assert {p.name for p in out.iterdir()} == expected
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((out / "results.json").read_text())
    assert results["n_train"] == 300 and results["n_test"] == 100
    rows = {(r["model"], r["n_components"]): r for r in results["results"]}
    assert set(rows) == {
        ("PCA", 2),
        ("PCA", 5),
        ("MLPAutoencoder", 2),
        ("MLPAutoencoder", 5),
    }
    assert rows[("PCA", 5)]["mse_vs_pca"] == 1.0
    assert rows[("PCA", 5)]["mse_vs_pca_se"] == 0.0
    assert rows[("MLPAutoencoder", 2)]["test_mse"] > 0
    assert rows[("MLPAutoencoder", 2)]["mse_vs_pca_se"] > 0
    assert "standard error over the 100 test images" in printed
    report = (out / "report.md").read_text()
    assert "![" in report and "reconstructions.png" in report
    assert "standard error over the 100 test images" in report
    assert leftovers(tmp_path) == []


class _Halved:
    """Reconstructs every row as half of itself: per-row errors known exactly."""

    def transform(self, X):
        return X

    def inverse_transform(self, code):
        return code / 2


# promise: vs_pca.rst / Is it better than PCA?
def test_the_ratio_to_pca_comes_with_its_standard_error():
    import pandas as pd
    from sklearn.decomposition import PCA

    from skae._cli import _add_ratio_to_pca, _format_table

    rng = np.random.RandomState(0)
    X_train, X_test = rng.randn(40, 4), rng.randn(9, 4) * [[3, 1, 1, 0.1]]
    models = {"PCA-1": PCA(1).fit(X_train), "AE-1": _Halved()}
    pca_rows = np.array(
        [
            np.mean(
                (
                    x
                    - models["PCA-1"].inverse_transform(models["PCA-1"].transform([x]))[
                        0
                    ]
                )
                ** 2
            )
            for x in X_test
        ]
    )
    halved_rows = np.array([np.mean((x / 2) ** 2) for x in X_test])
    table = pd.DataFrame(
        {
            "model": ["PCA", "MLPAutoencoder"],
            "n_components": [1, 1],
            "test_mse": [pca_rows.mean(), halved_rows.mean()],
            "squared_error_per_image": [0.0, 0.0],
            "fit_seconds": [0.0, 0.0],
            "transform_seconds": [0.0, 0.0],
        },
        index=["PCA-1", "AE-1"],
    )
    table = _add_ratio_to_pca(table, models, X_test)
    differences = halved_rows - pca_rows
    expected = statistics.stdev(differences) / 3 / statistics.fmean(pca_rows)
    assert table.loc["AE-1", "mse_vs_pca"] == pytest.approx(
        halved_rows.mean() / pca_rows.mean(), rel=1e-12
    )
    assert table.loc["AE-1", "mse_vs_pca_se"] == pytest.approx(expected, rel=1e-9)
    assert table.loc["PCA-1", "mse_vs_pca_se"] == 0.0
    shown = _format_table(table)
    assert f"{table.loc['AE-1', 'mse_vs_pca']:.3f} ± {expected:.3f}" in shown
    # One test row has no spread to measure: no standard error is shown.
    one = _add_ratio_to_pca(
        table.drop(columns=["mse_vs_pca", "mse_vs_pca_se"]), models, X_test[:1]
    )
    assert np.isnan(one.loc["AE-1", "mse_vs_pca_se"])
    assert "±" not in _format_table(one)


# promise: chapter.rst / How do I run the chapter's model?
def test_chapter_preset_and_display_step(tmp_path):
    status, out = run_compare(
        tmp_path,
        "--preset",
        "chapter",
        "--n-components",
        "8",
        "--display-step",
        "1",
        *FAST,
    )
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    assert results["command"].startswith("skae compare --preset chapter")
    params = results["models"]["AE-8"]
    assert params["hidden_layer_sizes"] == [256, 128]
    assert params["init"] == "random" and params["early_stopping"] is False
    assert params["activation"] == "logistic"
    assert params["learning_rate_init"] == 0.01
    assert params["max_iter"] == 2  # --max-iter overrides the preset's 10
    assert sorted(p.name for p in (out / "progress").iterdir()) == [
        "AE-8_epoch001.png",
        "AE-8_epoch002.png",
    ]
    assert not (out / "latent_2d.png").exists()


def write_csv(path, X, y):
    rows = np.column_stack([y, np.round(X * 255)]).astype(int)
    header = "label," + ",".join(f"p{i}" for i in range(784))
    np.savetxt(path, rows, fmt="%d", delimiter=",", header=header, comments="")
    return path


def test_compare_on_the_chapter_csv_files(tmp_path):
    from skae.datasets import load_mnist_sample

    X, y = load_mnist_sample()
    train = write_csv(tmp_path / "mnist_train.csv", X[:200], y[:200])
    test = write_csv(tmp_path / "mnist_test.csv", X[200:260], y[200:260])
    status, out = run_compare(
        tmp_path,
        "--data",
        str(train),
        str(test),
        "--n-components",
        "3",
        "--max-iter",
        "1",
    )
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    assert (results["n_train"], results["n_test"]) == (200, 60)
    status, out = run_compare(
        tmp_path, "--data", str(tmp_path), "--n-components", "3", "--max-iter", "1"
    )
    assert status == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "no-such-dataset"], "no-such-dataset: no such file"),
        (["--n-components", "900"], "must be <= min(n_features=784"),
        (
            ["--train-size", "50", "--n-components", "2", "60"],
            "--n-components 60 must be <= min(n_features=784, training images=50)",
        ),
        (["--n-components", "0"], "0 must be >= 1"),
        (["--max-iter", "two"], "'two' is not an integer"),
        (["--preset", "fancy"], "invalid choice: 'fancy'"),
        (["--test-size", "5000"], "--test-size 5000 must be smaller"),
        (["--device", "cuda:7"], "device='cuda:7'"),
        (["--data", "a.csv", "b.csv", "c.csv"], "one source, or a training"),
        (["--max-time", "0"], "0 must be a finite number > 0"),
        (["--max-time", "nan"], "nan must be a finite number > 0"),
        (["--max-time", "soon"], "'soon' is not a number"),
        (["--precision", "half"], "invalid choice: 'half'"),
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        run_compare(tmp_path, *args)
    assert exit_info.value.code == 2
    printed = capsys.readouterr()
    assert message in printed.err
    assert "Epoch" not in printed.out  # refused before any training
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out", ["/dev/null/report", "/dev/null/deeper/report"])
def test_out_under_a_file_exits_2(capsys, out):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--out", out, *FAST])
    assert exit_info.value.code == 2
    printed = capsys.readouterr()
    assert "cannot be written" in printed.err
    assert "Epoch" not in printed.out


def test_unwritable_out_creates_no_parent_folders(tmp_path, capsys, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--out", str(tmp_path / "new" / "deeper" / "report")])
    assert exit_info.value.code == 2
    assert "cannot be written: Permission denied" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_new_report_replaces_the_old_one_whole(tmp_path):
    status, out = run_compare(tmp_path, "--n-components", "2", *FAST)
    assert status == 0
    assert (out / "latent_2d.png").exists()
    status, out = run_compare(tmp_path, "--n-components", "3", *FAST)
    assert status == 0
    # No file of the first report is left beside the second one's.
    assert not (out / "latent_2d.png").exists()
    results = json.loads((out / "results.json").read_text())
    assert {row["n_components"] for row in results["results"]} == {3}
    assert leftovers(tmp_path) == []


def test_out_holding_other_files_is_refused(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--out", str(out), *FAST])
    assert exit_info.value.code == 2
    assert "holds files but no skae report" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


# promise: failures.rst / The ``skae compare`` command
def test_a_results_json_of_another_tool_is_no_report(tmp_path, capsys):
    out = tmp_path / "project"
    (out / "data").mkdir(parents=True)
    (out / "results.json").write_text('{"accuracy": 0.93}')
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--out", str(out), *FAST])
    assert exit_info.value.code == 2
    assert "holds files but no skae report" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        "data",
        "notes.txt",
        "results.json",
    ]


# promise: failures.rst / The ``skae compare`` command
def test_a_file_put_in_out_during_the_run_is_kept(tmp_path, capsys, monkeypatch):
    from skae import _cli

    status, out = run_compare(tmp_path, "--n-components", "2", *FAST)
    assert status == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    record = _cli._results_record

    def note_during_the_run(*args, **kwargs):
        (out / "notes.txt").write_text("written while it trained")
        return record(*args, **kwargs)

    monkeypatch.setattr(_cli, "_results_record", note_during_the_run)
    status, _ = run_compare(tmp_path, "--n-components", "3", *FAST)
    assert status == 0
    assert (out / "notes.txt").read_text() == "written while it trained"
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == {
        **before,
        "notes.txt": b"written while it trained",
    }
    beside = out.with_name(out.name + "-new")
    results = json.loads((beside / "results.json").read_text())
    assert {row["n_components"] for row in results["results"]} == {3}
    printed = capsys.readouterr()
    assert "changed during the run" in printed.err and str(beside) in printed.err
    assert f"to {beside}/" in printed.out


def test_out_may_not_be_the_current_folder(tmp_path, capsys, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    for given in (".", str(tmp_path)):
        with pytest.raises(SystemExit) as exit_info:
            main(["compare", "--out", given, *FAST])
        assert exit_info.value.code == 2
        assert "is the current folder or holds it" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["work"]


# promise: failures.rst / The ``skae compare`` command
def test_a_report_holding_the_users_files_is_not_replaced(tmp_path, capsys):
    status, out = run_compare(tmp_path, "--n-components", "2", *FAST)
    assert status == 0
    # The report folder is an ordinary one, not private to its owner.
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    (out / "my notes.md").write_text("keep me")
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--out", str(out), *FAST])
    assert exit_info.value.code == 2
    assert "also my notes.md, which no report writes" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before
    (out / "my notes.md").unlink()
    # A replaced report keeps its folder's mode.
    out.chmod(0o700)
    status, out = run_compare(tmp_path, "--n-components", "2", *FAST)
    assert status == 0
    assert out.stat().st_mode & 0o777 == 0o700
    (out / "progress").mkdir()
    (out / "progress" / "AE-2_epoch001.png").write_bytes(b"")
    (out / "progress" / "draft.txt").write_text("keep me")
    with pytest.raises(SystemExit):
        main(["compare", "--out", str(out), *FAST])
    assert "also progress/draft.txt" in capsys.readouterr().err
    assert (out / "progress" / "draft.txt").exists()


# promise: failures.rst / The ``skae compare`` command
def test_ctrl_c_exits_130_and_keeps_the_earlier_report(tmp_path):
    import signal

    status, out = run_compare(tmp_path, "--n-components", "2", *FAST)
    assert status == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    command = [sys.executable, "-m", "skae", "compare", "--n-components", "2", "3"]
    command += ["--max-iter", "500", "--train-size", "300", "--test-size", "100"]
    # Unbuffered, so that the child's "Epoch 2" line arrives when it is printed:
    # the handshake that says training has started.
    process = subprocess.Popen(
        [*command, "--out", str(out), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    for line in process.stdout:
        if line.startswith("Epoch 2,"):
            break
    else:
        pytest.fail("the child never started training")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted; nothing was written" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert leftovers(tmp_path) == []


def test_a_bad_data_file_is_named(tmp_path, capsys):
    bad = tmp_path / "broken.csv"
    bad.write_text("label,a,b\n1,2,3\n")
    with pytest.raises(SystemExit) as exit_info:
        run_compare(tmp_path, "--data", str(bad))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "broken.csv: expected 785 columns" in err
    assert "skae.metrics.compare(models, X_train, X_test)" in err
    assert not (tmp_path / "report").exists()


def test_a_test_size_that_cannot_hold_out_every_label_is_named(tmp_path, capsys):
    from skae.datasets import load_mnist_sample

    X, y = load_mnist_sample()
    data = write_csv(tmp_path / "few.csv", X[:30], y[:30])
    with pytest.raises(SystemExit) as exit_info:
        run_compare(tmp_path, "--data", str(data), "--test-size", "3")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--test-size 3 cannot hold out the" in err
    assert "Use a --test-size of at least" in err
    assert not (tmp_path / "report").exists()


def test_out_must_not_be_a_file(tmp_path, capsys):
    target = tmp_path / "report"
    target.write_text("keep me")
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--out", str(target)])
    assert exit_info.value.code == 2
    assert "is not a directory" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_interrupt_leaves_nothing_half_written(tmp_path, monkeypatch, capsys):
    import skae.metrics

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(skae.metrics, "compare", interrupted)
    status, _ = run_compare(tmp_path, *FAST)
    assert status == 130
    assert "nothing was written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_python_dash_m_skae():
    result = subprocess.run(
        [sys.executable, "-m", "skae", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.strip() == __import__("skae").__version__
    result = subprocess.run(
        [sys.executable, "-m", "skae", "compare", "--n-components", "-3"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2


def test_max_time_and_precision_reach_the_models(tmp_path):
    status, out = run_compare(
        tmp_path,
        "--n-components",
        "3",
        "--max-time",
        "30",
        "--precision",
        "float32",
        *FAST,
    )
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    assert "--max-time 30" in results["command"]
    (model,) = [m for m in results["models"].values() if "max_time" in m]
    assert model["max_time"] == 30 and model["precision"] == "float32"
