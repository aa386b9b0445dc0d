"""Record the versions a test run used; keep README's "Tested with" table in step.

``python scripts/tested_with.py record newest`` (run by ``make test``) and
``python scripts/tested_with.py record oldest --check`` (run by ``make
test-oldest``) read the versions installed in the running environment, store them
in bench/results/tested_with.json and render the README table between its
markers. With ``--check`` nothing is written and a difference fails: the oldest
set is pinned, so a difference means the record was not updated along with
.ci/oldest-constraints.txt. ``python scripts/tested_with.py check`` only compares
the README with the record (tests/test_versions.py runs it); ``readme`` rewrites
the README table from the record.
"""

import argparse
import json
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "bench" / "results" / "tested_with.json"
README = ROOT / "README.md"
START = "<!-- tested-with:start -->"
END = "<!-- tested-with:end -->"
# Distribution name -> the name the table shows.
PACKAGES = {
    "scikit-learn": "scikit-learn",
    "numpy": "NumPy",
    "scipy": "SciPy",
    "torch": "PyTorch",
    "safetensors": "safetensors",
    "pandas": "pandas",
    "matplotlib": "matplotlib",
    "dask": "Dask",
    "dask-ml": "dask-ml",
}
SETS = {"oldest": "oldest: `make test-oldest`", "newest": "newest: `make test`"}
PREAMBLE = """\
CI runs the test suite with two sets of versions. The oldest set is the lower
bounds in `pyproject.toml`, pinned in `.ci/oldest-constraints.txt` (it skips three
long MNIST trainings whose outcome depends on torch alone); the newest is what pip
resolved when `make test` last recorded it. Both run on Python 3.11, the oldest
that skae accepts; 3.12 and 3.13 are accepted but not tested in CI, whose CPU build
of torch is for 3.11 only. `scripts/tested_with.py` writes this table from
`bench/results/tested_with.json`.
"""


def installed_versions():
    """Return the running Python's minor version and each package's version."""
    versions = {"python": f"{sys.version_info.major}.{sys.version_info.minor}"}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{name} is not installed: install skae[test]") from None
    return versions


def render(records):
    """Return the README section for `records`, markers included."""
    rows = [
        "| | " + " | ".join(SETS.values()) + " |",
        "| --- |" + " --- |" * len(SETS),
    ]
    for name, shown in {"python": "Python", **PACKAGES}.items():
        versions = (records.get(kind, {}).get(name, "not recorded") for kind in SETS)
        rows.append(f"| {shown} | " + " | ".join(versions) + " |")
    return f"{START}\n{PREAMBLE}\n" + "\n".join(rows) + f"\n{END}"


def replace_section(text, section):
    """Return `text` with the part between the markers replaced by `section`."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{README} has no {START} ... {END} section")
    return text[:start] + section + text[end + len(END) :]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    record = commands.add_parser("record", help="record this environment's versions")
    record.add_argument("set", choices=list(SETS))
    record.add_argument(
        "--check", action="store_true", help="write nothing; fail on a difference"
    )
    commands.add_parser("readme", help="rewrite the README table from the record")
    commands.add_parser("check", help="fail if the README table and record differ")
    args = parser.parse_args(argv)

    records = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    new_records = dict(records)
    if args.command == "record":
        new_records[args.set] = installed_versions()
        old = records.get(args.set, {})
        for name, version in new_records[args.set].items():
            if old.get(name) != version:
                print(f"{args.set}: {name} {old.get(name)} -> {version}")
    readme = README.read_text()
    new_readme = replace_section(readme, render(new_records))

    if args.command == "check" and new_readme != readme:
        print(
            "README.md's tested-with section does not match "
            "bench/results/tested_with.json: run `python scripts/tested_with.py "
            "readme` and commit the result",
            file=sys.stderr,
        )
        return 1
    if args.command == "record" and args.check:
        if new_records != records or new_readme != readme:
            print(
                f"the {args.set} set's record or README table is out of date: run "
                f"`python scripts/tested_with.py record {args.set}` in that "
                "environment and commit the result",
                file=sys.stderr,
            )
            return 1
        return 0
    if args.command == "check":
        return 0
    if new_records != records:
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        RECORD.write_text(json.dumps(new_records, indent=2) + "\n")
        print(f"wrote {RECORD.relative_to(ROOT)}")
    if new_readme != readme:
        README.write_text(new_readme)
        print(f"wrote the tested-with section of {README.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
