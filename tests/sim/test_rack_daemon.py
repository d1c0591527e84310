"""`rig lab` as a user drives it (subprocesses), and the lab's ports reached with the field's own clients:
pyserial over RFC2217 and a pty, labgrid's NetworkPowerDriver, esptool.
"""

import os
import socket
import struct
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from esp_pylib.serial_reset import classic_bootloader_reset
from labgrid import Environment
from labgrid.driver import NetworkPowerDriver, SerialDriver

from rig.image import esp_app, factory
from rig.sim import registry
from rig.variants import facts
from tests.labs import lab_rack
from tests.sim.conftest import Lab

ESPTOOL = str(Path(sys.executable).parent / "esptool")
PYOCD = str(Path(sys.executable).parent / "pyocd")


def pyocd(env: dict, *args) -> str:
    proc = subprocess.run([PYOCD, *map(str, args)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def esptool(console: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([ESPTOOL, "--port", console, *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def test_up_status_down_as_a_user(lab_factory):
    lab = lab_factory()
    first = lab.rig("lab", "up", "--rack", lab.rack, "--state", lab.state)
    assert "up (pid" in first.stdout

    again = lab.rig("lab", "up", "--rack", lab.rack)
    assert again.returncode == 0 and "already up" in again.stdout

    status = lab.status()
    rack = yaml.safe_load(lab.rack.read_text())["targets"]
    bound = yaml.safe_load(Path(status["resolved_rack"]).read_text())["targets"]  # the rack with real ports
    assert status["running"] is True
    assert [b["id"] for b in status["boards"]] == list(rack) == list(bound)
    for board in status["boards"]:
        resources = bound[board["id"]]["resources"]
        assert resources["NetworkSerialPort"]["port"] != 0
        assert board["console"] == f"rfc2217://127.0.0.1:{resources['NetworkSerialPort']['port']}"
        assert board["variant"] == resources["RigBoard"]["variant"]
        assert board["power"] == "on"
        outlet = resources["NetworkPowerPort"]
        assert board["outlet"] == outlet["host"].format(index=outlet["index"], value="").rstrip("/")
        assert Path(board["pty"]).exists()
        probe = resources.get("RigDebugProbe")
        assert (board["probe"], board["target"]) == ((probe["unique_id"], probe["target_type"]) if probe
                                                     else (None, None))
        if probe:  # the lab serves the rack's probe under an id of its own (two labs of one rack)
            written = rack[board["id"]]["resources"]["RigDebugProbe"]
            assert probe == {**written, "unique_id": registry.probe_id(written["unique_id"], status["lab"])}
        served = ("NetworkSerialPort", "NetworkPowerPort", "RigDebugProbe")  # all else is the rack's, as written
        assert {k: v for k, v in resources.items() if k not in served} == \
            {k: v for k, v in rack[board["id"]]["resources"].items() if k not in served}
    assert len({b["console"] for b in status["boards"]}) == len(rack)
    assert all(b["id"] in first.stdout for b in status["boards"])  # `up` shows the status table

    lab.down()
    assert lab.status() == {"lab": registry.lab_name(lab.rack), "running": False, "boards": []}
    assert not Path(status["resolved_rack"]).exists()
    proc = lab.rig("lab", "down", "--rack", lab.rack, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("rig: error: lab ") and "is not up" in proc.stderr and "rig lab up" in proc.stderr


def test_busy_console_port_is_one_clear_line(lab_factory):
    """A rack may name a port; if another program holds it, `up` says so in one line."""
    lab = lab_factory(boards=("esp32-1",))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        doc = yaml.safe_load(lab.rack.read_text())
        doc["targets"]["esp32-1"]["resources"]["NetworkSerialPort"]["port"] = port
        lab.rack.write_text(yaml.safe_dump(doc))
        proc = lab.rig("lab", "up", "--rack", lab.rack, "--state", lab.state, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and f"console 127.0.0.1:{port}" in proc.stderr


def test_a_restarted_lab_keeps_its_ports(lab_factory):
    """Like a real rack's, the addresses survive `down` and `up`; a port taken meanwhile is replaced."""
    lab = lab_factory(boards=("esp32-1", "stm32h7-1"))
    lab.up()
    before = {b["id"]: (b["console"], b["outlet"]) for b in lab.status()["boards"]}
    lab.down()
    lab.up()
    assert {b["id"]: (b["console"], b["outlet"]) for b in lab.status()["boards"]} == before
    lab.down()
    esp_port = int(before["esp32-1"][0].rsplit(":", 1)[1])
    with socket.create_server(("127.0.0.1", esp_port)):
        lab.up()
        after = {b["id"]: b["console"] for b in lab.status()["boards"]}
    assert after["esp32-1"] != before["esp32-1"][0] and after["stm32h7-1"] == before["stm32h7-1"][0]


def test_two_checkouts_with_racks_of_one_name_run_two_labs(tmp_path, open_console):
    """Labs are named by their rack's path: two copies of targets/virtual-rack.yaml in two folders
    (two clones) run side by side under one runtime folder, each board on ports of its own and each
    probe under an id of its own (pyocd opens the probe whose id it is given, not the first alike)."""
    env = os.environ | {"RIG_RUNTIME_DIR": str(tmp_path / "run")}
    labs = [Lab(lab_rack(tmp_path / clone / "targets", boards=("esp32-1", "stm32l0-1")), tmp_path / clone / "state",
                env) for clone in ("cloneA", "cloneB")]
    assert labs[0].rack.name == labs[1].rack.name
    try:
        for lab in labs:
            lab.up()
        names = {lab.status()["lab"] for lab in labs}
        assert len(names) == 2 and len({lab.url("esp32-1") for lab in labs}) == 2
        assert all(name.startswith("virtual-rack-") for name in names)
        consoles = [open_console(lab.url("esp32-1")) for lab in labs]
        for cycled, other in ((0, 1), (1, 0)):  # cycling one lab's outlet boots that lab's board only
            consoles[other].lines_for(0.2)
            for value in (0, 1):
                urllib.request.urlopen(f"{labs[cycled].url('esp32-1', 'power')}/{value}").close()
            consoles[cycled].expect(r"rst:0x1 \(POWERON_RESET\)")
            assert not any("rst:" in line for line in consoles[other].lines_for(0.5))
        probes = [lab.board("stm32l0-1")["probe"] for lab in labs]  # as the resolved racks name them
        assert len(set(probes)) == 2 and all(p.startswith("RIGVIRT-L0-0001") for p in probes)
        listed = pyocd(env, "list")
        assert all(p in listed for p in probes)
        layout = facts("stm32l0").layout
        slot1 = layout.geometry.base + layout.part("slot1").offset
        data = os.urandom(layout.geometry.sector_size)
        (tmp_path / "data.bin").write_bytes(data)
        pyocd(env, "load", "-u", probes[0], "--base-address", hex(slot1), tmp_path / "data.bin")
        for probe, written in zip(probes, (True, False), strict=True):  # written through A's probe, on A's board only
            pyocd(env, "cmd", "-u", probe, "-c", f"savemem 0x{slot1:x} {len(data)} {tmp_path / 'back.bin'}")
            assert ((tmp_path / "back.bin").read_bytes() == data) is written
    finally:
        for lab in labs:
            lab.stop()


def test_lab_url_prints_each_address(shared_lab):
    board = shared_lab.board("stm32h7-1")
    assert shared_lab.url("stm32h7-1") == board["console"]
    assert shared_lab.url("stm32h7-1", "pty") == board["pty"]
    assert shared_lab.url("stm32h7-1", "power") == board["outlet"]
    assert shared_lab.url("stm32h7-1", "swd") == board["swd"]
    assert shared_lab.rig("lab", "url", "--rack", shared_lab.rack, "--what", "control").stdout.strip() == \
        shared_lab.status()["control"]
    for args, words in [(("--board", "nope"), "serves no board 'nope'"), (("--what", "pty"), "needs --board"),
                        (("--board", "esp32-1", "--what", "swd"), "has no swd")]:
        proc = shared_lab.rig("lab", "url", "--rack", shared_lab.rack, *args, check=False)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and words in proc.stderr, proc.stderr


def test_a_rack_leaving_ports_to_a_lab_that_is_not_up_is_one_clear_line(lab_factory):
    lab = lab_factory(boards=("esp32-1",))
    for verb in (("power", "cycle"), ("lab", "url")):
        proc = lab.rig(*verb, "--rack", lab.rack, "--board", "esp32-1", check=False)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert "rig lab up --rack" in proc.stderr


def test_rack_without_virtual_boards_is_refused(lab_factory):
    lab = lab_factory(boards=("esp32-1",))
    doc = yaml.safe_load(lab.rack.read_text())
    doc["targets"]["esp32-1"]["resources"]["RigBoard"]["virtual"] = False
    lab.rack.write_text(yaml.safe_dump(doc))
    proc = lab.rig("lab", "up", "--rack", lab.rack, "--state", lab.state, check=False)
    assert proc.returncode == 2 and "no board has `virtual: true`" in proc.stderr


def test_console_over_rfc2217_and_pty_with_labgrid_power(shared_lab, open_console):
    esp = shared_lab.board("esp32-1")
    net = open_console(esp["console"])
    pty = open_console(esp["pty"])
    env = Environment(shared_lab.status()["resolved_rack"])  # labgrid reads the rack as the lab bound it
    target = env.get_target("esp32-1")
    power = NetworkPowerDriver(target, "power")
    serial = SerialDriver(target, "serial")  # labgrid's own console on the rack's NetworkSerialPort
    target.activate(power)
    target.activate(serial)

    power.off()
    assert power.get() is False
    assert shared_lab.board("esp32-1")["power"] == "off"
    power.on()
    assert power.get() is True
    # The ESP32 ROM's first lines after power-on, seen by both consoles of the same UART.
    banner = r"rst:0x1 \(POWERON_RESET\),boot:0x13 \(SPI_FAST_FLASH_BOOT\)\r\n"
    for console in (net, pty):
        console.expect(banner)
    serial.expect(banner.replace("\\r\\n", ""), timeout=5)
    target.deactivate(serial)


def test_pty_input_reaches_the_board(shared_lab, open_console):
    """Reset the ESP32 into its ROM loader over RFC2217, then sync with it through the pty."""
    esp = shared_lab.board("esp32-1")
    net = open_console(esp["console"])
    classic_bootloader_reset(net.port)
    net.expect(r"waiting for download\r\n")
    pty = open_console(esp["pty"])
    # esptool's SYNC command: SLIP-framed request (direction 0, op 0x08, 36 bytes of sync pattern).
    body = b"\x07\x07\x12\x20" + b"\x55" * 32
    pty.port.write(b"\xc0" + struct.pack("<BBHI", 0, 0x08, len(body), 0) + body + b"\xc0")
    pty.expect(r"\xc0\x01\x08")  # a response (direction 1) to SYNC


def test_flash_survives_a_daemon_restart(shared_lab, open_console, tmp_path):
    """esptool writes a factory image over RFC2217; after `down` and `up` (a power cut for the whole
    rack) and an outlet cycle, the board boots it: the console banner is the read-back."""
    console_url = shared_lab.board("esp32-1")["console"]
    merged = factory.factory_image("esp32", esp_app.app_image("1.2.3"))
    blob = tmp_path / "factory.bin"
    blob.write_bytes(merged.data)
    written = esptool(console_url, "write-flash", hex(merged.offset), blob)
    assert written.returncode == 0, written.stdout + written.stderr

    shared_lab.down()
    shared_lab.up()
    console = open_console(shared_lab.url("esp32-1"))
    for value in (0, 1):
        urllib.request.urlopen(f"{shared_lab.url('esp32-1', 'power')}/{value}").close()
    console.expect(r"rig: boot variant=esp32 version=1\.2\.3\+0 slot=0 reset=power-on boots=1 fault=none\r\n")


@pytest.mark.parametrize("path, code", [("/boards/nope", 404), ("/elsewhere", 404)])
def test_control_endpoint_refuses_unknown_paths(shared_lab, path, code):
    url = shared_lab.status()["control"] + path
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url)
    assert err.value.code == code


def test_reset_fits_factory_fresh_boards(lab_factory, tmp_path):
    """`rig lab reset` stops the lab and removes what the boards held: esptool reads erased flash
    where an image was written before, and `rig lab up` serves the same boards again."""
    lab = lab_factory(boards=("esp32-1",))
    lab.up()
    console_url = lab.board("esp32-1")["console"]
    blob = tmp_path / "marker.bin"
    blob.write_bytes(b"rig-reset-marker" * 256)
    assert esptool(console_url, "write-flash", "0x200000", blob).returncode == 0

    reset = lab.rig("lab", "reset", "--rack", lab.rack)
    assert "1 board(s) factory-fresh (esp32-1)" in reset.stdout
    assert lab.status()["running"] is False

    lab.up()
    back = tmp_path / "back.bin"
    read = esptool(console_url, "read-flash", "0x200000", hex(len(blob.read_bytes())), back)
    assert read.returncode == 0, read.stdout + read.stderr
    assert back.read_bytes() == b"\xff" * len(blob.read_bytes())
