"""The exporter configuration `rig lab export` writes from a rack file (no processes started)."""

import pytest

from rig.errors import RigError
from rig.lab import load_rack
from rig.lab.export import exporter_config, probe_server_command
from tests.multihost.conftest import REPO

# exporter_config only writes ports into a configuration: these are never bound or dialled. Well-known
# ports, where neither a lab nor the kernel's port 0 ever lands, so they cannot pass for a lab's ports.
H7_PROBE, L0_PROBE = 901, 902
ESP32_RFC2217, H7_RFC2217, L0_RFC2217 = 911, 912, 913


def test_real_boards_export_as_labgrid_exports_them_with_each_probe_behind_a_pyocd_server():
    rack = load_rack(REPO / "targets" / "bench-example.yaml")
    ports = {"nucleo-h743zi-1": H7_PROBE, "nucleo-l073rz-1": L0_PROBE}
    config = exporter_config(rack, None, ports, hostname="bench-1.lab")
    assert sorted(config) == ["esp32-devkit-1", "nucleo-h743zi-1", "nucleo-l073rz-1"]
    h7 = config["nucleo-h743zi-1"]
    # labgrid's exporter serves a USBSerialPort through ser2net itself: passed on as written.
    assert h7["USBSerialPort"] == {"match": {"ID_SERIAL_SHORT": "003A00293532510B31333430"}, "speed": 115200}
    assert h7["RigDebugProbe"] == {"unique_id": f"remote:bench-1.lab:{H7_PROBE}", "target_type": "stm32h743xx"}
    assert h7["NetworkPowerPort"]["model"] == "gude"
    assert "RigBoard" not in h7  # its facts travel as place tags
    assert "RigDebugProbe" not in config["esp32-devkit-1"]
    assert probe_server_command("003A00293532510B31333430", H7_PROBE)[1:] == [
        "server", "--uid", "003A00293532510B31333430", "--port", str(H7_PROBE), "--allow-remote"]


def test_virtual_boards_export_their_pty_except_the_esp32_and_their_swd_port():
    rack = load_rack(REPO / "targets" / "virtual-rack.yaml")
    lab = {"boards": {
        "esp32-1": {"console": {"host": "127.0.0.1", "rfc2217": ESP32_RFC2217, "pty": "/dev/pts/7"}},
        "stm32h7-1": {"console": {"host": "127.0.0.1", "rfc2217": H7_RFC2217, "pty": "/dev/pts/8"},
                      "swd": {"host": "127.0.0.1", "port": H7_PROBE}},
        "stm32l0-1": {"console": {"host": "127.0.0.1", "rfc2217": L0_RFC2217, "pty": "/dev/pts/9"},
                      "swd": {"host": "127.0.0.1", "port": L0_PROBE}},
    }}
    config = exporter_config(rack, lab)
    # The ESP32's DevKit reset is DTR/RTS, which a pty does not carry: the lab's RFC2217 port instead.
    assert config["esp32-1"]["NetworkSerialPort"] == {"host": "127.0.0.1", "port": ESP32_RFC2217, "speed": 115200}
    assert config["stm32h7-1"]["RawSerialPort"] == {"port": "/dev/pts/8", "speed": 115200}
    assert "NetworkSerialPort" not in config["stm32h7-1"]
    assert config["stm32l0-1"]["RigDebugProbe"]["unique_id"] == f"remote:127.0.0.1:{L0_PROBE}"


def test_a_virtual_rack_whose_lab_is_down_is_refused_in_one_line():
    rack = load_rack(REPO / "targets" / "virtual-rack.yaml")
    with pytest.raises(RigError, match=r"^board esp32-1 is virtual and its lab is not up; start it with "):
        exporter_config(rack, None)
