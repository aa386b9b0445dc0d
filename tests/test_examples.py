"""Every example runs top to bottom, with tiny settings, so none can rot."""

import runpy
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


def test_examples_are_found():
    names = {path.name for path in EXAMPLES}
    assert {
        "plot_chapter_autoencoder.py",
        "plot_pca_vs_autoencoder.py",
        "plot_pipeline_gridsearch.py",
    } <= names


# promise: README.md / Quick start in Python
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_runs(path, monkeypatch, capsys):
    monkeypatch.setenv("SKAE_EXAMPLES_FAST", "1")
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: None)
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        plt.close("all")
    assert capsys.readouterr().out
