"""Board leases: one holder per board across processes, freed by the kernel when the holder dies.

A lease is an exclusive flock(2) on `<runtime dir>/leases/<board>.lock`. The kernel drops a
flock when the last descriptor of the holding process closes, which includes the process being
killed, so a crashed pytest-xdist worker or CI job never leaves a stale lock behind (the failure
mode of labgrid's coordinator reservations, labgrid issues #1739 and #1884). The file itself is
never deleted - deleting a lock file races with a waiter that has it open - and its content only
names the current holder for error messages.
"""

import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from rig.errors import RigError
from rig.lab.runtime import runtime_dir

POLL_S = 0.05


def lease_dir() -> Path:
    return runtime_dir() / "leases"


@dataclass
class Lease:
    board_id: str
    path: Path
    _fd: int | None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def acquire(board_id: str, timeout: float = 0.0, holder: str = "", where: str = "") -> Lease:
    """Take the board's lease, waiting up to `timeout` seconds; RigError names the holder on timeout.

    `holder` is a label for messages (e.g. "pytest worker gw1"); the pid and host are added.
    `where` tells apart boards of one id in different racks (rig passes the console, which is what
    physically identifies a board): two copies of a rack on other ports are other boards.
    """
    directory = lease_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = _path(board_id, where)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise RigError(f"board {board_id} is in use by {describe_holder(board_id, where)}; wait for "
                               "it to finish or pick another board with --board") from None
            time.sleep(POLL_S)
    note = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "holder": holder}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, note, 0)
    return Lease(board_id, path, fd)


def holder_of(board_id: str, where: str = "") -> dict | None:
    """Who holds the board's lease now ({"pid", "host", "holder"}), or None when it is free."""
    path = _path(board_id, where)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return json.loads(os.pread(fd, 4096, 0) or b"{}")
            except ValueError:  # the holder is between truncate and write
                return {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def describe_holder(board_id: str, where: str = "") -> str:
    info = holder_of(board_id, where)
    if not info:
        return "another process"
    label = f"{info['holder']} " if info.get("holder") else ""
    return f"{label}(pid {info.get('pid')} on {info.get('host')})"


def _path(board_id: str, where: str) -> Path:
    # Board ids come from YAML keys; keep the file name inside the lease folder whatever they hold.
    name = f"{board_id}@{where}" if where else board_id
    return lease_dir() / ("".join(c if c.isalnum() or c in "-_.@" else "_" for c in name) + ".lock")
