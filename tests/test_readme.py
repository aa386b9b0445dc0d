"""README.md's tables come from bench/results/, and no page speaks of the tracker."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / "scripts" / "readme_tables.py"
RESULTS = ROOT / "bench" / "results"

# Words about how the project was built, which mean nothing to a user.
TRACKER_WORDS = re.compile(
    r"\bissues?\b|\bthe brief\b|\bsessions?\b|\btickets?\b|\bgoal column\b",
    re.IGNORECASE,
)


def check(readme, results=RESULTS):
    command = [sys.executable, str(SCRIPT), "--check"]
    return subprocess.run(
        [*command, "--readme", str(readme), "--results", str(results)],
        capture_output=True,
        text=True,
    )


def quality_section(text):
    start = text.index("<!-- table:quality:start -->")
    return start, text.index("<!-- table:quality:end -->")


# promise: README.md / The main job: is an autoencoder better than PCA?
def test_readme_tables_match_the_results_files():
    result = check(ROOT / "README.md")
    assert result.returncode == 0, result.stderr


def test_an_edited_number_in_the_readme_is_caught(tmp_path):
    text = (ROOT / "README.md").read_text()
    start, end = quality_section(text)
    # The first error in the table, with one digit changed.
    number = re.compile(r"\d\.\d{5}").search(text, start, end)
    assert number is not None, "the quality table has no errors in it"
    edited = number[0][:-1] + str((int(number[0][-1]) + 1) % 10)
    readme = tmp_path / "README.md"
    readme.write_text(text[: number.start()] + edited + text[number.end() :])
    result = check(readme)
    assert result.returncode == 1
    assert "differ" in result.stderr


def test_a_new_result_changes_the_readme(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    quality = json.loads((results / "quality.json").read_text())
    quality["rows"][0]["autoencoder_mse"] *= 2
    quality["rows"][0]["ratio"] *= 2
    (results / "quality.json").write_text(json.dumps(quality))
    assert check(ROOT / "README.md", results).returncode == 1


def test_every_marked_section_has_a_generator(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        (ROOT / "README.md").read_text()
        + "\n<!-- table:unknown:start -->\n<!-- table:unknown:end -->\n"
    )
    result = check(readme)
    assert result.returncode != 0
    assert "table:unknown" in result.stderr


def user_facing_files():
    docs = ROOT / "docs"
    generated = {docs / name for name in ("_build", "generated", "auto_examples")}
    pages = [
        path
        for path in docs.rglob("*.rst")
        if not any(folder in path.parents for folder in generated)
    ]
    examples = [
        *(ROOT / "examples").glob("*.py"),
        ROOT / "examples" / "GALLERY_HEADER.rst",
    ]
    return [ROOT / "README.md", *pages, *examples]


@pytest.mark.parametrize(
    "path", user_facing_files(), ids=lambda path: str(path.relative_to(ROOT))
)
def test_no_tracker_words(path):
    found = [
        f"line {number}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if TRACKER_WORDS.search(line)
    ]
    assert not found, "\n".join(found)


def test_the_tracker_word_check_catches_them():
    for text in ["the issue's goal", "measured in issue 5", "as the brief says"]:
        assert TRACKER_WORDS.search(text)
    assert not TRACKER_WORDS.search("onnxruntime.InferenceSession(path)")


def test_readme_links_lead_somewhere():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)\)", text)
    local = [target for target in targets if "://" not in target]
    assert local, "README links to none of the docs"
    missing = [target for target in local if not (ROOT / target).exists()]
    assert not missing, missing
