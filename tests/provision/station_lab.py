"""A private copy of the whole virtual rack for the station tests, and `rig provision` run on it as
an operator runs it: a separate process, watched through its output, its database and its files.

The copy's ports are chosen by its lab; it has other board ids, a runtime folder (leases, lab registry)
and a state folder of its own - provisioning burns the ESP32's eFuses, so these boards are never
the shared rack's. A test module gets one lab (fixture `station_lab`, tests/provision/conftest.py) and
gives each test its own work folder and database: the recipes take a board in any state. The
firmware key is the lab's, though: an ESP32 trusts only the key whose digest its lock burnt.
"""

import json
import os
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from rig.image.keys import ECDSA_P256, RSA_3072
from tests import keys
from tests.labs import RIG, PrivateLab

SUFFIX = "-station"
BOARDS = tuple(f"{b}{SUFFIX}" for b in ("esp32-1", "stm32h7-1", "stm32l0-1"))
# Units left readable: the STM32s by the probe, the ESP32 by esptool (no flash or NVS encryption).
OPEN = ("--option", "stm32h7.rdp=0", "--option", "stm32l0.rdp=0", "--option", "esp32.flash_encryption=false")


class StationLab(PrivateLab):
    def __init__(self, root: Path):
        super().__init__(root, name=SUFFIX[1:])
        # One set of firmware keys for every station on this lab: the ESP32's lock burns its digest
        # for good. EC P-256 for the STM32s' MCUboot, RSA-3072 for the ESP32's Secure Boot V2; made once per
        # test process (tests/keys.py), as each lab's ESP32 has eFuses of its own.
        self.firmware_key = root / "firmware-key.pem"
        self.firmware_key.write_bytes(keys.pem("station firmware", ECDSA_P256))
        self.esp32_key = root / "firmware-key-rsa-3072.pem"
        self.esp32_key.write_bytes(keys.pem("station firmware", RSA_3072))
        self.key_args = ("--firmware-key", str(self.firmware_key), "--firmware-key", str(self.esp32_key))

    def provision(self, workdir: Path, *args, env: dict | None = None) -> subprocess.CompletedProcess:
        """`rig provision run` on this lab's rack with `workdir` (records in workdir by default)."""
        return self.rig("provision", "run", "--rack", self.rack, "--workdir", workdir, *self.key_args,
                        "--operator", "tester", "--station", "station-test", *args, env=env)

    def start(self, workdir: Path, *args) -> subprocess.Popen:
        """`rig provision run` in a process group of its own, its output on a pipe."""
        return subprocess.Popen([RIG, "provision", "run", "--rack", str(self.rack), "--workdir", str(workdir),
                                 *self.key_args, "--operator", "tester", *map(str, args)],
                                cwd=self.root, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_for_line(proc: subprocess.Popen, start: str, timeout: float = 120) -> list[str]:
    """Read the station's output until a line starting with `start`; the lines read. Fails if the
    station ends first; kills it if no such line comes within `timeout` (a hung station)."""
    seen = []
    guard = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
    guard.start()
    try:
        for got in proc.stdout:
            seen.append(got.rstrip("\n"))
            if seen[-1].startswith(start):
                return seen
    finally:
        guard.cancel()
    pytest.fail(f"the station ended (status {proc.wait()}) before {start!r}:\n" + "\n".join(seen))


def processes_in_group(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid and not _zombie(entry):
                    found.append(int(entry.name))
            except (ProcessLookupError, OSError):
                pass
    return found


def _zombie(proc_dir: Path) -> bool:
    try:
        return (proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def db_rows(db: Path) -> dict[str, list[dict]]:
    """Every row of the records database, read with sqlite3 itself (not through rig)."""
    with sqlite3.connect(db) as c:
        c.row_factory = sqlite3.Row
        return {t: [dict(r) for r in c.execute(f"SELECT * FROM {t}")] for t in ("units", "attempts", "audit")}


def check_consistent(db: Path) -> dict[str, list[dict]]:
    """No unit without its provisioned attempt, no attempt without its audit entry, no field half set."""
    rows = db_rows(db)
    for unit in rows["units"]:
        mine = [a for a in rows["attempts"] if a["chip_id"] == unit["chip_id"] and a["outcome"] == "provisioned"]
        assert mine and all(a["serial"] == unit["serial"] for a in mine), unit
        assert unit["last_provisioned_at"] == max(a["finished_at"] for a in mine)
    for a in rows["attempts"]:
        assert a["outcome"] in ("provisioned", "refused", "failed") and a["finished_at"] and a["operator"]
        steps = json.loads(a["steps"])
        assert steps and all(s["seconds"] >= 0 for s in steps)
        if a["outcome"] == "provisioned":
            assert a["certificate"] and a["key_fingerprint"] and a["firmware_sha256"] and a["lock_state"]
            assert all(s["ok"] for s in steps)
    assert len(rows["audit"]) == len(rows["attempts"])
    return rows
