"""Where running labs are announced: one JSON file per lab under $RIG_RUNTIME_DIR/labs/.

    {"rack": abs path, "pid": n, "state": abs path, "log": abs path, "timing": "none"|"datasheet",
     "power": {"host", "port"}, "control": {"host", "port"},
     "boards": {id: {"variant", "console": {"rfc2217": port, "host": host, "pty": "/dev/pts/N"},
                     "swd": {"host", "port", "unique_id"}  (STM32 boards with a probe server)}}}

The pyocd probe plugin and `rig lab status` read these files; a file whose pid is gone is stale.
"""

import json
import os
from pathlib import Path

from rig.atomic import write_text
from rig.lab.runtime import runtime_dir


def lab_name(rack) -> str:
    """A lab is named after its rack: the targets file's stem, or the folder's name."""
    path = Path(rack).resolve()
    return path.stem if path.is_file() else path.name


def path_for(name: str) -> Path:
    return runtime_dir() / "labs" / f"{name}.json"


def write(name: str, entry: dict) -> Path:
    path = path_for(name)
    write_text(path, json.dumps(entry, indent=2))
    return path


def read(name: str) -> dict | None:
    """The entry of a running lab, or None (no file, unreadable, or its daemon is gone)."""
    try:
        entry = json.loads(path_for(name).read_text())
    except (OSError, ValueError):
        return None
    return entry if alive(entry.get("pid")) else None


def live_labs() -> dict[str, dict]:
    """Every running lab by name (for probe discovery)."""
    labs = {}
    for f in sorted((runtime_dir() / "labs").glob("*.json")):
        entry = read(f.stem)
        if entry is not None:
            labs[f.stem] = entry
    return labs


def remove(name: str, pid: int) -> None:
    """Remove the lab's file if it still belongs to daemon `pid` (never a newer daemon's)."""
    path = path_for(name)
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
