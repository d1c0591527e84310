"""A virtual ESP32 on a pty, for driving it with the real esptool and espefuse.

The board is sim-core's `Board` running this package's ROM loader and bootloader; its console
UART is bridged to a pty that esptool opens as a serial device. A pty has no DTR/RTS, so the test
drives the strapping and reset lines the way a person with a DevKit's BOOT and EN buttons would
(esptool then warns that it cannot reset the chip, and talks to the loader that is already
running). Verdicts come only from what esptool/espefuse print and from flash read back.
"""

import os
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

from rig.image.layouts import LAYOUTS
from rig.sim.board import Board
from rig.sim.esp32 import bootloader, rom

BIN = Path(sys.executable).parent


def firmware(ctx) -> None:
    if ctx.boot_mode == "download":
        rom.run(ctx)
    bootloader.boot(ctx)


class PtyEsp32:
    def __init__(self, state_dir: Path, board_id: str = "esp32-test"):
        self.board = Board(board_id, "esp32", LAYOUTS["esp32-4mb-ota"], state_dir, firmware)
        self._master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave
        self._console = bytearray()
        self._lock = threading.Lock()
        self.board.add_listener(self._to_host)
        self._stop = False
        self._thread = threading.Thread(target=self._from_host, daemon=True)
        self._thread.start()

    def _to_host(self, data: bytes) -> None:
        with self._lock:
            self._console += data
        os.write(self._master, data)

    def _from_host(self) -> None:
        while not self._stop:
            try:
                data = os.read(self._master, 65536)
            except OSError:
                return
            self.board.console_input(data)

    def boot(self, download: bool) -> None:
        """Hold BOOT (GPIO0 low) or not, and power the board on."""
        self.board.set_gpio0(download)
        self.board.set_power(True)

    def power_cycle(self, download: bool) -> None:
        """Off, then on with BOOT held (download) or not; the console log starts afresh."""
        self.board.set_power(False)
        self.clear_console()
        self.boot(download)

    def arm_cut(self, after_ops: int, tear: bool) -> None:
        """The lab's power-cut relay: power drops at flash operation `after_ops` from now (torn:
        half of it reaches the cells) and comes back shortly after, a cold boot."""
        self.board.arm_cut(after_ops, tear, off_time=0.05)

    def wait_for(self, *texts: str, timeout: float = 10.0) -> str:
        """The console output once any of `texts` has appeared on it."""
        deadline = time.monotonic() + timeout
        while not any(text in (out := self.console()) for text in texts):
            if time.monotonic() > deadline:
                raise AssertionError(f"none of {texts} on the console within {timeout} s; got:\n{out}")
            time.sleep(0.01)
        return out

    def console(self) -> str:
        with self._lock:
            return self._console.decode("latin-1")

    def clear_console(self) -> None:
        with self._lock:
            self._console.clear()

    def close(self) -> None:
        self._stop = True
        self.board.close()
        os.close(self._slave)
        os.close(self._master)


def run_tool(tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a real tool of the venv (esptool, espefuse) as a user would, without a reset line."""
    cmd = [str(BIN / tool), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def esptool(port: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_tool("esptool", "--port", port, "--before", "no-reset", "--after", "no-reset", *args,
                    check=check)

