"""pyproject.toml's lower bounds are the ones CI tests, and README says so."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CONSTRAINTS = ROOT / ".ci" / "oldest-constraints.txt"
RECORD = ROOT / "bench" / "results" / "tested_with.json"
# What a user installs; the docs extra is built with the newest versions only.
EXTRAS = ["plot", "pandas", "dask", "all", "test"]


def release(version):
    """Return (2, 0) for "2.0", "2.0.0" and "2.0.0+cpu": the same release."""
    parts = [int(part) for part in version.split("+")[0].split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def lower_bounds():
    requirements = list(PROJECT["dependencies"])
    for extra in EXTRAS:
        requirements += PROJECT["optional-dependencies"][extra]
    bounds = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[a-z,]+\])?>=([0-9.]+)", requirement)
        assert match, f"{requirement!r} is not 'name>=version'"
        bounds[match[1]] = match[3]
    return bounds


def pins():
    pinned = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pinned[name.lower()] = version
    return pinned


def test_every_lower_bound_is_pinned_in_the_oldest_set():
    pinned = pins()
    bounds = lower_bounds()
    assert {"numpy", "scikit-learn", "torch", "pandas", "dask-ml"} <= set(bounds)
    for name, bound in bounds.items():
        assert name in pinned, f"{name}>={bound} is not in {CONSTRAINTS.name}"
        assert release(pinned[name]) == release(bound), (
            f"pyproject.toml says {name}>={bound}, the oldest set tests "
            f"{name}=={pinned[name]}"
        )


def test_the_recorded_oldest_set_is_the_pinned_one():
    oldest = json.loads(RECORD.read_text())["oldest"]
    pinned = pins()
    assert PROJECT["requires-python"] == f">={oldest.pop('python')}"
    for name, version in oldest.items():
        assert release(version) == release(pinned[name]), name


# promise: README.md / Versions tested
def test_readme_table_matches_the_record():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "tested_with.py"), "check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
