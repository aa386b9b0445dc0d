"""List the promises of README.md and the user guide, with the tests that cover each.

A promise is a section of README.md or of a page of docs/user_guide/ (what a
user reads as one claim: "Ctrl-C and resume", "What is dense, and when"), and
its code examples. A test covers a section when a comment line
``# promise: PAGE / SECTION TITLE`` stands right above it (above its decorators),
e.g. ``# promise: failures.rst / Ctrl-C and resume``. This script reads the
pages and the tests as text (it imports neither skae nor pytest) and prints, or
writes as reStructuredText for the contributor page, one row per section: its
code examples, and the tests that name it.

Run:  python scripts/promises.py            (a plain listing)
      python scripts/promises.py --check    (exit 1 if a marker names no section)
      python scripts/promises.py --rst FILE (the table the docs include)
"""

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
MARKER = re.compile(r"^\s*#\s*promise:\s*(?P<page>[\w.]+)\s*/\s*(?P<section>.+?)\s*$")
RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")


def sections(path):
    """Return [(title, number of code examples)] of a page, in order."""
    lines = path.read_text().splitlines()
    found = []
    if path.suffix == ".md":
        fence = False
        for line in lines:
            if line.startswith("```"):
                fence = not fence
                if fence and found:
                    found[-1][1] += 1
            elif not fence and line.startswith("#"):
                found.append([line.lstrip("#").strip(), 0])
    else:
        for index, line in enumerate(lines[1:], start=1):
            title = lines[index - 1].strip()
            if RST_UNDERLINE.match(line) and title and len(line.strip()) >= len(title):
                found.append([title, 0])
            elif line.strip().startswith(".. code-block::") and found:
                found[-1][1] += 1
    return [(title, count) for title, count in found]


def pages():
    """Return {page name: [(section, code examples)]} of README.md and the guide."""
    result = {"README.md": sections(ROOT / "README.md")}
    for path in sorted((ROOT / "docs" / "user_guide").glob("*.rst")):
        result[path.name] = sections(path)
    return result


def markers():
    """Return [(page, section, test id)] of every ``# promise:`` marker in tests/."""
    found = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith(
                "test_"
            ):
                continue
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            index = first - 2
            while index >= 0 and lines[index].strip().startswith("#"):
                match = MARKER.match(lines[index])
                if match:
                    test = f"tests/{path.name}::{node.name}"
                    found.append((match["page"], match["section"], test))
                index -= 1
    return found


def table():
    """Return (rows, unknown): one row per section; markers naming no section."""
    known = pages()
    covering = {}
    unknown = []
    for page, section, test in markers():
        titles = {title for title, _ in known.get(page, [])}
        if section not in titles:
            unknown.append(f"{test}: {page} / {section}")
            continue
        covering.setdefault((page, section), []).append(test)
    rows = [
        (page, title, examples, sorted(covering.get((page, title), [])))
        for page, titles in known.items()
        for title, examples in titles
    ]
    return rows, unknown


def rst(rows):
    """Return the rows as a reStructuredText list-table."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - page",
        "     - section",
        "     - code examples",
        "     - tests that name it",
    ]
    for page, title, examples, tests in rows:
        lines += [
            f"   * - {page}",
            f"     - {title}",
            f"     - {examples}",
            "     - " + (", ".join(f"``{t.split('::')[1]}``" for t in tests) or "none"),
        ]
    covered = sum(1 for row in rows if row[3])
    summary = (
        f"{covered} of {len(rows)} sections are named by at least one test's "
        "``# promise:`` marker."
    )
    return summary + "\n\n" + "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--rst", type=Path)
    args = parser.parse_args()
    rows, unknown = table()
    if args.rst:
        args.rst.write_text(rst(rows))
    elif not args.check:
        for page, title, examples, tests in rows:
            print(f"{page} / {title} ({examples} examples): {', '.join(tests) or '-'}")
    for line in unknown:
        print(f"marker names no section: {line}", file=sys.stderr)
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())
