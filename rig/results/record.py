"""Recording a run as it happens, for the pytest hooks, `rig ota`/`rig demo` and `rig provision run`.

A results store that cannot be reached or refuses a write costs the run its record, never the
work: the recorder says so in one line (through `warn`) and records nothing more.
"""

import subprocess
import sys
from pathlib import Path

from rig.database import safe_url
from rig.errors import RigError
from rig.results.store import Store


def git_revision(where: Path | str = ".") -> str | None:
    """HEAD's commit of the checkout at `where`, '+dirty' when tracked files changed; None outside git."""
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip()[:12] + ("+dirty" if dirty.stdout.strip() else "")


def warn_stderr(line: str) -> None:
    print(f"rig: warning: {line}", file=sys.stderr)


class Recorder:
    """One run in the store: `add(...)` per result, `finish()` at the end. Never raises on a store
    problem after it opened: it warns once and stops recording."""

    def __init__(self, kind: str, url: str | None = None, rack: str | None = None, command: str | None = None,
                 revision: str | None = None, warn=warn_stderr):
        self.warn = warn
        self.store = Store(url)  # a bad URL is the caller's usage error: raise it
        self.run_id: int | None = self.store.start_run(kind, rack=rack, command=command,
                                                        revision=revision or git_revision())

    @property
    def active(self) -> bool:
        return self.run_id is not None

    def add(self, **fields) -> None:
        if self.run_id is None:
            return
        try:
            self.store.add_result(self.run_id, **fields)
        except RigError as exc:
            self._give_up(exc)

    def finish(self, status: str | None = None, note: str | None = None) -> str | None:
        if self.run_id is None:
            return None
        try:
            return self.store.finish_run(self.run_id, status=status, note=note)
        except RigError as exc:
            self._give_up(exc)
            return None
        finally:
            self.store.close()

    def describe(self) -> str:
        return f"run {self.run_id} in {safe_url(self.store.url)}"

    def _give_up(self, exc: RigError) -> None:
        self.warn(f"{exc}; this run is no longer recorded")
        self.run_id = None
