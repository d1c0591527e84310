"""Where running labs are announced: per lab, under $RIG_RUNTIME_DIR/labs/, a JSON entry and the
resolved rack - the rack file with the ports the lab really bound (a rack may give port 0: the lab
chooses), a labgrid environment file every rig verb and the pytest plugin read for a running lab.

    {"rack": abs path, "pid": n, "state": abs path, "log": abs path, "timing": "none"|"datasheet",
     "power": {"host", "port"}, "control": {"host", "port"},
     "boards": {id: {"variant", "console": {"rfc2217": port, "host": host, "pty": "/dev/pts/N"},
                     "swd": {"host", "port", "unique_id"}  (STM32 boards with a probe server; the
                             rack's probe id qualified with the lab's name, probe_id())}}}

The pyocd probe plugin and `rig lab status` read these files; a file whose pid is gone is stale.
"""

import hashlib
import json
import os
from pathlib import Path

from rig.atomic import write_text
from rig.lab import Board, Rack, load_rack
from rig.lab.runtime import runtime_dir


def lab_name(rack) -> str:
    """A lab is named after its rack's absolute path: the file's stem (or the folder's name), readable,
    and a hash of the path, so two checkouts with a rack of the same name run two labs side by side."""
    path = Path(rack).resolve()
    stem = path.stem if path.is_file() else path.name
    return f"{stem}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def probe_id(rack_id: str, lab: str) -> str:
    """The unique id a lab's virtual probe is served under: the rack's id, qualified with the lab's name.
    A real probe's serial number is unique; two labs of one rack (two checkouts, one runtime folder)
    would otherwise both offer RIGVIRT-H7-0001 and pyocd would open whichever it found first. pyocd
    matches `-u` by substring, so the rack's id still picks the probe while one lab serves it."""
    return f"{rack_id}@{lab}"


def path_for(name: str) -> Path:
    return runtime_dir() / "labs" / f"{name}.json"


def resolved_path(name: str) -> Path:
    return runtime_dir() / "labs" / f"{name}.yaml"


def write(name: str, entry: dict, resolved_rack: str) -> Path:
    """Announce a lab: its resolved rack first, so whoever finds the entry finds the rack too."""
    write_text(resolved_path(name), resolved_rack)
    path = path_for(name)
    write_text(path, json.dumps(entry, indent=2))
    return path


def live_rack_path(rack) -> Path:
    """The rack of a running lab as it was bound (its resolved rack); the rack itself if no lab of it
    runs (a real rack, or a lab not up: a port 0 there is refused when a board is opened)."""
    name = lab_name(rack)
    if read(name) is not None and resolved_path(name).is_file():
        return resolved_path(name)
    return Path(rack)


def live_board(board: Board) -> Board:
    """`board` as the running lab that serves it bound it (its real ports), found by the board's rack
    file or that file's folder; the board itself if it is real or no lab of its rack is up."""
    if not board.virtual:
        return board
    for rack in (board.source, board.source.parent):
        name = lab_name(rack)
        entry = read(name)
        if (entry is not None and entry.get("rack") == str(Path(rack).resolve())
                and board.id in entry.get("boards", {}) and resolved_path(name).is_file()):
            return load_rack(resolved_path(name)).board(board.id)
    return board


def load_live_rack(rack) -> Rack:
    """load_rack() of the running lab's resolved rack, or of the rack itself (see live_rack_path)."""
    return load_rack(live_rack_path(rack))


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
    """Remove the lab's files if they still belong to daemon `pid` (never a newer daemon's)."""
    path = path_for(name)
    try:
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
            resolved_path(name).unlink(missing_ok=True)
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
