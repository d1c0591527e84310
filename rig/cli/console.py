"""One output style for every verb: rich on stdout, plain `rig: error: ...` lines on stderr."""

import sys

from rich.console import Console

# Piped output (CI logs, `| less`) gets a wide table rather than rich's 80-column default.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def err(line: str) -> None:
    # Plain write: error text often holds brackets and paths that rich would read as markup.
    print(f"rig: error: {line}", file=sys.stderr)
