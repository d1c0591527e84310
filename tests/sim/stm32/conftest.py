"""A served virtual STM32 board for the SWD and MCUboot tests, reached the way a user reaches one.

Each board is rig.sim.board.Board running the real boot flow (rig.sim.boot: this MCUboot model,
then rig's reference firmware on the emulated core), with its SWD server and a pty console, announced in a private lab
registry (RIG_RUNTIME_DIR) so that pyocd - as a subprocess or through its Python API - finds the
probe by its unique id through the plugin. Verdicts come from the console (the pty, read with
pyserial) and from flash read back through pyocd. Power is the lab's switch (Board.set_power).
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from intelhex import IntelHex

from rig.image.keys import load_signer
from rig.image.trailer import Trailer
from rig.ota import releases
from rig.sim import boot
from rig.sim.board import Board
from rig.sim.pty_console import PtyConsole
from rig.sim.stm32 import vmcuboot
from rig.sim.stm32.parts import PARTS
from rig.sim.stm32.swd import SwdServer
from rig.variants import facts

VARIANTS = ("stm32h7", "stm32l0")
PYOCD = str(Path(sys.executable).parent / "pyocd")


def variants(default: str) -> list:
    """Both variants: `default` in the default run, the other one nightly, to keep the suite fast."""
    return [pytest.param(v, marks=() if v == default else pytest.mark.nightly) for v in VARIANTS]


def make_signer(directory: Path):
    path = directory / "ec.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return load_signer(path)


@pytest.fixture(scope="session")
def signer(tmp_path_factory):
    return make_signer(tmp_path_factory.mktemp("keys"))


class Console:
    """The board's console pty, read with pyserial as any terminal program would."""

    def __init__(self, path: str):
        self._port = serial.Serial(path, 115200, timeout=0.05)
        self.text = ""

    def expect(self, pattern: str, timeout: float = 5.0) -> re.Match:
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            if m := rx.search(self.text):
                self.text = self.text[m.end() :]
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"console: no {pattern!r} within {timeout}s; got:\n{self.text}")
            # Whatever has arrived, or wait (up to the port timeout) for the next byte.
            self.text += self._port.read(self._port.in_waiting or 1).decode(errors="replace")

    def drain(self) -> str:
        self.text += self._port.read(65536).decode(errors="replace")
        text, self.text = self.text, ""
        return text

    def close(self) -> None:
        self._port.close()


class VirtualStm32:
    def __init__(self, variant: str, root: Path, signer, timing: str = "none"):
        self.variant = variant
        self.layout = facts(variant).layout
        self.geometry = self.layout.geometry
        self.target = PARTS[variant].target_type
        self.uid = f"RIGVIRT-TEST-{variant.upper()}-{os.getpid()}"
        self.signer = signer
        self.root = root / variant
        self.root.mkdir()
        self.board = Board(f"{variant}-1", variant, self.layout, self.root / "state", boot.run, timing=timing)
        self.swd = SwdServer(self.board)
        self.pty = PtyConsole(self.board)
        self.console = Console(self.pty.path)
        labs = root / "runtime" / "labs"
        labs.mkdir(parents=True, exist_ok=True)
        entry = {"pid": os.getpid(), "boards": {self.board.id: {
            "variant": variant, "swd": {"host": "127.0.0.1", "port": self.swd.port, "unique_id": self.uid}}}}
        (labs / f"test-{variant}.json").write_text(json.dumps(entry))

    def close(self) -> None:
        self.console.close()
        self.pty.close()
        self.swd.close()
        self.board.close()

    # -- addresses
    def addr(self, partition: str, offset: int = 0) -> int:
        return self.geometry.base + self.layout.part(partition).offset + offset

    # -- pyocd, as a user runs it
    def pyocd(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([PYOCD, *map(str, args)], capture_output=True, text=True, timeout=120, env=os.environ)
        if check and proc.returncode != 0:
            raise AssertionError(f"pyocd {' '.join(map(str, args))} failed:\n{proc.stdout}{proc.stderr}")
        return proc

    def cmd(self, *commands: str, check: bool = True, attach: bool = False) -> subprocess.CompletedProcess:
        """`pyocd commander` running `commands`; it halts the core when it connects, unless `attach`."""
        args = ["cmd", "-u", self.uid, "-t", self.target, *(["-M", "attach"] if attach else [])]
        for c in commands:
            args += ["-c", c]
        return self.pyocd(*args, check=check)

    def read_back(self, address: int, length: int) -> bytes:
        out = self.root / f"readback-{address:x}.bin"
        self.cmd(f"savemem 0x{address:x} {length} {out}")
        return out.read_bytes()

    # -- images
    def image(self, version: str, fault: str = "no-confirm", security_counter: int | None = None,
              signer=None) -> bytes:
        """rig's reference firmware at `version`, signed: the board executes it."""
        return releases.stm32_image(self.variant, version, signer or self.signer, fault,
                                    security_counter=security_counter)

    def flash_hex(self, parts: dict[int, bytes]) -> None:
        """Program several regions in one `pyocd load` of an Intel HEX file."""
        ih = IntelHex()
        for address, data in parts.items():
            ih.frombytes(data, offset=address)
        path = self.root / f"load-{time.monotonic_ns()}.hex"
        ih.write_hex_file(str(path))
        # Leave the core halted: the firmware must not start (and swap) before the test says so.
        self.pyocd("load", "-u", self.uid, "-t", self.target, "--no-reset", "-O", "resume_on_disconnect=false", path)

    def install(self, primary: bytes | None = None, secondary: bytes | None = None, pending: str | None = None,
                bootloader: bool = True) -> None:
        """The bootloader blob, a primary image and a secondary one marked test/perm (each optional).

        Reflashing the bootloader erases its partition, the stored security counter included.
        """
        parts = {}
        if bootloader:
            parts[self.addr("mcuboot")] = vmcuboot.build(self.layout, [self.signer.public])
        if primary is not None:
            parts[self.addr("slot0")] = primary
        if secondary is not None:
            parts[self.addr("slot1")] = secondary
        if pending is not None:
            trailer = Trailer.for_layout(self.layout, "slot1")
            writes = trailer.mark_permanent() if pending == "perm" else trailer.mark_test()
            for off, data in writes:
                parts[self.addr("slot1", off)] = data
        self.flash_hex(parts)
        self.board.set_power(False)  # the test's power-on is the first boot of what was flashed
        self.console.drain()


@pytest.fixture
def virtual_stm32(tmp_path, monkeypatch, signer):
    """Factory: a powered, served virtual board of a variant (one per test)."""
    boards = []
    monkeypatch.setenv("RIG_RUNTIME_DIR", str(tmp_path / "runtime"))

    def make(variant: str, timing: str = "none") -> VirtualStm32:
        """`timing`: the lab's timing model (rig.sim.timing), as `rig lab up --timing`."""
        vb = VirtualStm32(variant, tmp_path, signer, timing)
        boards.append(vb)
        vb.board.set_power(True)
        return vb

    yield make
    for vb in boards:
        vb.close()
