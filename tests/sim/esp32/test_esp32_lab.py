"""The lab's ESP32 as a user meets it: `rig lab up`, then esptool with its default options, which
reset the chip into the ROM loader and back out through RFC2217's DTR/RTS."""

import subprocess
import sys
from pathlib import Path

from rig.image import esp_app, factory

ESPTOOL = str(Path(sys.executable).parent / "esptool")
ESPEFUSE = str(Path(sys.executable).parent / "espefuse")


def test_esptool_defaults_flash_the_lab_esp32_and_it_boots_the_app(lab_factory, open_console, tmp_path):
    lab = lab_factory(boards=("esp32-1",))
    lab.up()
    board = lab.board("esp32-1")
    console = open_console(board["pty"])  # open before the reset, or the boot log is lost
    efuses = subprocess.run([ESPEFUSE, "--port", board["console"], "summary"],
                            capture_output=True, text=True, timeout=60)
    assert efuses.returncode == 0, efuses.stdout + efuses.stderr
    assert "(CRC 0x" in efuses.stdout and " OK)" in efuses.stdout  # the factory MAC, read over RFC2217

    args = []
    for region in factory.esp32_regions(esp_app.app_image("1.2.0")):  # bootloader, table, otadata, app
        path = tmp_path / f"{region.name}.bin"
        path.write_bytes(region.data)
        args += [hex(region.offset), str(path)]

    out = subprocess.run([ESPTOOL, "--port", board["console"], "write-flash", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Hash of data verified." in out.stdout
    assert "Hard resetting via RTS pin..." in out.stdout

    console.expect(r"rst:0x1 \(POWERON_RESET\),boot:0x3 \(DOWNLOAD_BOOT")  # esptool's reset into the ROM
    console.expect(r"rst:0x1 \(POWERON_RESET\),boot:0x13 \(SPI_FAST_FLASH_BOOT\)")  # and out of it
    console.expect(r"boot: Loaded app from partition at offset 0x10000")
    console.expect(r"rig: boot variant=esp32 version=1\.2\.0\+0 slot=0 ")
