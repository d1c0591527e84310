"""OTA figures on the virtual rack: bytes on the wire per update with and without interruptions, and
the wall time of the default HIL suite with -n 0 and -n 3.

Goal (issue 6): resuming wastes at most one chunk per interruption. The chunk is what the
transport can resume at: over HTTP a broken link resumes at the first byte not received (the
server writes 512-byte chunks) and a power cut at the first 4 KiB flash sector the board had not
recorded; over MCUmgr SMP a broken link resumes at the offset img_mgmt reports, but a power cut
loses img_mgmt's upload state (it is in RAM, as in Zephyr), so the upload starts again.

    python -m bench ota              (RIG_BENCH_SUITE=0 skips the two suite runs)
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rig.drivers.pool import BoardPool
from rig.lab import load_rack
from rig.ota import scenarios
from rig.ota.kit import CampaignKit

RACK = "targets/virtual-rack.yaml"
CASES = ("full image", "delta patch", "resume after a broken link", "power cut at 50% of the download")
SUITE = ["tests/hil", "-q", "-p", "no:cacheprovider"]


def _ensure_lab() -> None:
    subprocess.run([sys.executable, "-m", "rig", "lab", "up", "--rack", RACK], check=True, capture_output=True)


def wire_table() -> Table:
    table = Table(title="bytes on the wire per update (virtual rack)", title_justify="left")
    for column in ("board", "scenario", "artefact B", "on the wire B", "interruptions", "extra B", "extra B each"):
        table.add_column(column, justify="right" if column.endswith(("B", "each", "ions")) else "left")
    pool = BoardPool("bench ota", lease_timeout=600)
    try:
        with tempfile.TemporaryDirectory() as work, CampaignKit(RACK, Path(work)) as kit:
            for board in load_rack(RACK).boards:
                for name in CASES:
                    if not scenarios.fits(name, board.variant):
                        continue
                    v = kit.campaign(pool.take(board)).run(scenarios.by_name(name))
                    breaks = sum(f.startswith(("drop", "cut@")) for f in v.faults_fired)
                    extra = v.wire_bytes - v.artefact_size
                    each = f"{extra / breaks:.0f}" if breaks else "-"
                    table.add_row(board.id, name + ("" if v.ok else " (FAILED)"), str(v.artefact_size),
                                  str(v.wire_bytes), str(breaks), str(extra), each)
    finally:
        pool.release()
    return table


def suite_table() -> Table:
    table = Table(title="default HIL suite wall time (pytest tests/hil)", title_justify="left")
    for column in ("workers", "seconds", "result"):
        table.add_column(column)
    for workers in ("0", "3"):
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pytest", *SUITE, "-n", workers], capture_output=True, text=True)
        last = (done.stdout.strip().splitlines() or ["no output"])[-1]
        table.add_row(workers, f"{time.monotonic() - start:.1f}", last.strip("= "))
    return table


def main() -> None:
    out = Console(width=160)  # piped into a log, not squeezed to 80 columns
    _ensure_lab()
    out.print(wire_table())
    if os.environ.get("RIG_BENCH_SUITE", "1") != "0":
        out.print(suite_table())


if __name__ == "__main__":
    main()
