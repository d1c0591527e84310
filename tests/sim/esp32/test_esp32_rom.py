"""esptool 5 and espefuse, unchanged, against the virtual ESP32's ROM loader and flasher stub."""

import os
import re

import pytest
from esp32_harness import esptool, run_tool


@pytest.fixture
def download(esp32):
    """The board powered on with BOOT held: the ROM loader is waiting for esptool."""
    esp32.boot(download=True)
    return esp32


def mac_of(output: str) -> str:
    return re.search(r"^MAC:\s+([0-9a-f:]{17})$", output, re.M).group(1)


def test_chip_id_and_read_mac_identify_an_esp32_d0wd_v3_with_a_stable_mac(download):
    first = esptool(download.port, "chip-id").stdout
    assert "Detecting chip type... ESP32" in first
    assert "Chip type:          ESP32-D0WD-V3 (revision v3.1)" in first
    assert "Crystal frequency:  40MHz" in first
    assert "Stub flasher running." in first
    again = esptool(download.port, "--baud", "921600", "read-mac").stdout
    assert "Changing baud rate to 921600" in again and "Changed." in again
    assert mac_of(first) == mac_of(again)
    assert mac_of(first).startswith("24:0a:c4:")  # Espressif's OUI


def test_flash_id_reports_a_4mb_winbond_part(download):
    out = esptool(download.port, "flash-id").stdout
    assert "Manufacturer: ef" in out
    assert "Device: 4016" in out
    assert "Detected flash size: 4MB" in out


@pytest.mark.parametrize("mode", [[], ["--no-compress"]], ids=["compressed", "no-compress"])
def test_write_flash_then_read_flash_returns_the_same_bytes(download, tmp_path, mode):
    data = os.urandom(70_000) + bytes(30_000) + os.urandom(1_001)
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    out = esptool(download.port, "write-flash", *mode, "0x20000", str(src)).stdout
    assert "Hash of data verified." in out
    esptool(download.port, "read-flash", "0x20000", str(len(data)), str(back))
    assert back.read_bytes() == data
    assert "Verification successful" in esptool(download.port, "verify-flash", "0x20000", str(src)).stdout

    other = tmp_path / "other.bin"
    other.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    failed = esptool(download.port, "verify-flash", "0x20000", str(other), check=False)
    assert failed.returncode != 0
    assert "Verification failed" in failed.stdout + failed.stderr


def test_rom_loader_without_stub_writes_reads_and_verifies(download, tmp_path):
    data = os.urandom(5_000)
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    out = esptool(download.port, "--no-stub", "write-flash", "0x30000", str(src)).stdout
    assert "Uploading stub" not in out
    assert "Hash of data verified." in out
    esptool(download.port, "--no-stub", "read-flash", "0x30000", str(len(data)), str(back))
    assert back.read_bytes() == data


def test_erase_region_erases_whole_sectors_and_nothing_else(download, tmp_path):
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(b"\x5a" * 0x3000)
    esptool(download.port, "write-flash", "0x40000", str(src))
    esptool(download.port, "erase-region", "0x41000", "0x1000")
    esptool(download.port, "read-flash", "0x40000", "0x3000", str(back))
    assert back.read_bytes() == b"\x5a" * 0x1000 + b"\xff" * 0x1000 + b"\x5a" * 0x1000


def test_erase_flash_leaves_every_byte_erased(download, tmp_path):
    src, back = tmp_path / "src.bin", tmp_path / "back.bin"
    src.write_bytes(b"\x00" * 0x1000)
    esptool(download.port, "write-flash", "0x3ff000", str(src))
    esptool(download.port, "erase-flash")
    esptool(download.port, "read-flash", "0x3fe000", "0x2000", str(back))
    assert back.read_bytes() == b"\xff" * 0x2000


def espefuse(port: str, *args: str, check: bool = True):
    return run_tool("espefuse", "--port", port, "--before", "no-reset", *args, check=check)


def test_espefuse_reads_factory_efuses_and_burns_with_otp_rules(download, tmp_path):
    summary = espefuse(download.port, "summary").stdout
    assert re.search(r"= 24:0a:c4:[0-9a-f:]{8} \(CRC 0x[0-9a-f]{2} OK\)", summary)
    assert re.search(r"SECURE_VERSION \(BLOCK3\).*= 0 R/W", summary)

    espefuse(download.port, "--do-not-confirm", "burn-efuse", "SECURE_VERSION", "0x3", "JTAG_DISABLE", "1")
    espefuse(download.port, "--do-not-confirm", "write-protect-efuse", "SECURE_VERSION")
    summary = espefuse(download.port, "summary").stdout
    assert re.search(r"SECURE_VERSION \(BLOCK3\).*= 3 R/- ", summary)
    assert re.search(r"JTAG_DISABLE \(BLOCK0\).*= True", summary)

    # The cells persist in espefuse's own virtual-eFuse file format, with the same OTP rules.
    efuse_file = tmp_path / "esp32-state" / "efuse.bin"
    virt = run_tool("espefuse", "--chip", "esp32", "--virt", "--path-efuse-file", str(efuse_file), "summary")
    assert re.search(r"SECURE_VERSION \(BLOCK3\).*= 3 R/- ", virt.stdout)


def test_run_leaves_the_rom_loader_and_boots_from_flash(download):
    out = esptool(download.port, "--no-stub", "run").stdout
    assert "Hard resetting" not in out
    log = download.wait_for("invalid header: 0xffffffff")  # the ROM's flash boot, on an erased chip
    assert "waiting for download" in log


def test_uart_download_disable_efuse_shuts_the_rom_loader(download):
    espefuse(download.port, "--do-not-confirm", "burn-efuse", "UART_DOWNLOAD_DIS", "1")
    download.power_cycle(download=True)
    refused = esptool(download.port, "--connect-attempts", "1", "chip-id", check=False)
    assert refused.returncode != 0
    assert "Failed to connect to Espressif device: No serial data received." in refused.stderr
    assert "waiting for download" not in download.console()


def packets_before_an_ack(esp) -> int:
    """How many data packets the stub sends before it waits for the host's ack (the host reads on
    until the line has been quiet for half a second)."""
    from esptool.loader import slip_reader
    from esptool.util import FatalError

    esp._port.timeout = 0.5
    count = 0
    while True:
        try:
            packet = esp.read()
        except FatalError:  # nothing more on the line (between packets): the stub waits
            esp._slip_reader = slip_reader(esp._port, esp.trace)  # the timed-out reader is spent
            return count
        assert len(packet) == 4096
        count += 1


@pytest.mark.parametrize("window,ahead", [(64, 1), (8192, 2)])
def test_read_flash_window_counts_bytes_as_the_stub_does(download, window, ahead):
    """esptool's READ_FLASH asks for at most 64 bytes in flight: the stub's window is in bytes
    (handle_flash_read: `num_sent - num_acked < max_in_flight`), so it sends one 4 KiB packet and
    waits for its ack; a window of 8 KiB lets two go ahead."""
    import struct

    from esptool.cmds import detect_chip

    esp = detect_chip(download.port, 115200, "no-reset").run_stub()
    try:
        esp.check_command("read flash", esp.ESP_CMDS["READ_FLASH"], struct.pack("<IIII", 0, 4 * 4096, 4096, window))
        assert packets_before_an_ack(esp) == ahead
        esp.write(struct.pack("<I", 4096))
        assert packets_before_an_ack(esp) == 1  # the ack freed one packet's room
    finally:
        esp._port.close()


def test_read_flash_waits_for_a_stalled_host_as_the_stub_does(download):
    """The stub's SLIP_recv has no timeout: a host that acks a packet 6 s late (a loaded machine)
    gets the rest of the read and its digest; the model used to drop the transfer after 5 s."""
    import struct
    import time

    from esptool.cmds import detect_chip

    esp = detect_chip(download.port, 115200, "no-reset").run_stub()
    try:
        esp.check_command("read flash", esp.ESP_CMDS["READ_FLASH"], struct.pack("<IIII", 0, 2 * 4096, 4096, 64))
        assert packets_before_an_ack(esp) == 1
        time.sleep(6)
        esp.write(struct.pack("<I", 4096))
        assert len(esp.read()) == 4096
        esp.write(struct.pack("<I", 2 * 4096))
        assert len(esp.read()) == 16  # the MD5 of the whole read
    finally:
        esp._port.close()
