"""`rig lab export`'s probe servers bind their own ports and the export reads them back
(rig.lab.export.start_probe_server), so no port is picked, released and handed on.

A virtual board's probe stands in for a real one: pyocd finds it through rig's probe plugin and
`pyocd server` serves it as it serves an ST-LINK. A client reaches each server as a remote client
does, through pyocd's `remote:HOST:PORT` probe, and reads the part's DBGMCU_IDCODE.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from rig.chips.stm32 import PARTS
from rig.errors import RigError
from rig.lab.export import start_probe_server
from tests.labs import PrivateLab, bound_rack

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    """The STM32 boards of a private lab as it bound them (rig.lab.Board), its registry seen by this
    process and so by the pyocd servers it starts."""
    lab = PrivateLab(tmp_path_factory.mktemp("probe-servers"), name="probes", variants=tuple(PARTS))
    with lab.running(seen_here=True):
        yield bound_rack(lab.rack, lab.env["RIG_RUNTIME_DIR"]).boards


def idcode_through(port: int, board) -> int:
    """DBGMCU_IDCODE read with `pyocd cmd` through the server on `port`, as a remote client reads it."""
    done = subprocess.run([BIN / "pyocd", "cmd", "-u", f"remote:127.0.0.1:{port}", "-t", board.probe_target,
                           "-c", f"read32 0x{PARTS[board.variant].idcode:08x}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return int(done.stdout.split()[1], 16)  # "5c001000:  10036450    |...|"


def test_each_probe_server_serves_its_probe_on_the_port_it_bound(probes, tmp_path):
    started = [(board, *start_probe_server(board.probe, tmp_path / f"pyocd-{board.id}.log")) for board in probes]
    try:
        assert len({port for _, _, port in started}) == len(probes)
        for board, _, port in started:
            assert idcode_through(port, board) & 0xFFF == PARTS[board.variant].dev_id
    finally:
        for _, server, _ in started:
            server.terminate()
            server.wait(10)


def test_a_restarted_server_reads_its_own_line_of_an_appended_log(probes, tmp_path):
    board, log = probes[0], tmp_path / "pyocd.log"
    for _ in range(2):
        server, port = start_probe_server(board.probe, log)
        try:
            assert idcode_through(port, board) & 0xFFF == PARTS[board.variant].dev_id
        finally:
            server.terminate()
            server.wait(10)


def test_a_probe_that_is_not_there_is_one_line_naming_it_and_the_log(probes, tmp_path):
    # pyocd waits for the probe to be plugged in; the export gives up after the timeout.
    log = tmp_path / "pyocd-missing.log"
    with pytest.raises(RigError) as refused:
        start_probe_server("NOSUCH-PROBE", log, timeout=2)
    assert str(refused.value) == (f"pyocd server for probe NOSUCH-PROBE is not serving after 2 s (is the probe "
                                  f"connected?); see {log}")
