"""One output style for every verb: rich on stdout, plain `rig: error: ...` lines on stderr."""

import sys

from rich.console import Console

out = Console(highlight=False)


def err(line: str) -> None:
    # Plain write: error text often holds brackets and paths that rich would read as markup.
    print(f"rig: error: {line}", file=sys.stderr)
