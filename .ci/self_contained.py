"""Lint: nothing under rig/ or tests/ names the reference material kept beside the repository.

The package and its tests must work from a clone with nothing beside it (bench/ may look for the
corpus there, and says when it is absent). Run from tox's lint environment; exit 1 with one line
per offending file and line.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("rig", "tests")
OUTSIDE = re.compile(rb"\.\./shared\b|/work/shared\b")


def main() -> int:
    found = []
    for top in CHECKED:
        for path in sorted((ROOT / top).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            for number, line in enumerate(path.read_bytes().splitlines(), 1):
                if OUTSIDE.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: names a path outside the repository")
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
