"""A virtual STM32 board whose console is a pty, signed rig images, and the real smpclient on top.

The board is rig.sim.board.Board running the whole boot flow (rig.sim.boot: the MCUboot model, then
the app model, which serves SMP on the console through rig.sim.smp), with its flash file
programmed as a probe programs a blank chip: the virtual MCUboot trusting the test key, and a
signed image in the primary slot. The daemon (`rig lab up`) runs the same boards; one test goes
through it.
"""

import asyncio
import os
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from smpclient import SMPClient
from smpclient.transport.serial import SMPSerialTransport

from rig.image import appdesc, mcuboot
from rig.image.keys import load_signer
from rig.image.layouts import Layout
from rig.image.trailer import Trailer, TrailerState
from rig.sim import boot
from rig.sim.board import Board
from rig.sim.pty_console import PtyConsole
from rig.sim.stm32 import vmcuboot
from rig.variants import facts

VARIANTS = ("stm32h7", "stm32l0")


@pytest.fixture(scope="session")
def signer(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "ec.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return load_signer(path)


def app_binary(variant: str, version: tuple[int, int, int, int], size: int, fault: str = "none") -> bytes:
    """A firmware binary as rig's reference build lays it out: code, the descriptor at 0x400, code."""
    desc = appdesc.AppDescriptor(variant, version, fault).pack()
    off = facts(variant).appdesc_offset
    return os.urandom(off) + desc + os.urandom(size - off - len(desc))


@pytest.fixture(scope="session")
def make_image(signer) -> Callable[..., bytes]:
    def make(variant: str, version: str = "1.0.0", size: int = 6000, fault: str = "none") -> bytes:
        v = mcuboot.Version.parse(version)
        return mcuboot.sign(app_binary(variant, (v.major, v.minor, v.revision, v.build), size, fault), signer, v)

    return make


def layout_of(variant: str) -> Layout:
    return facts(variant).layout


def program(flash_file: Path, layout: Layout, writes: dict[str, bytes]) -> None:
    """Put bytes into partitions of a fresh flash file, as a debug probe programs a blank chip."""
    g = layout.geometry
    data = bytearray([g.erased]) * g.size
    for name, content in writes.items():
        off = layout.part(name).offset
        data[off : off + len(content)] = content
    flash_file.write_bytes(data)


class Rig:
    """One powered board with its pty console; `client()` opens smpclient on it."""

    def __init__(self, variant: str, state_dir: Path, bootloader: bytes, slot0: bytes):
        self.variant = variant
        self.layout = layout_of(variant)
        self.flash_file = state_dir / "flash.bin"
        state_dir.mkdir(parents=True, exist_ok=True)
        program(self.flash_file, self.layout, {"mcuboot": bootloader, "slot0": slot0})
        self.board = Board(f"smp-{variant}", variant, self.layout, state_dir, boot.run)
        self.console = PtyConsole(self.board)

    def trailer(self, part: str) -> TrailerState:
        """A slot's MCUboot trailer, decoded from flash read-back."""
        t = Trailer.for_layout(self.layout, part)
        return t.read(self.read_flash(part))

    def read_flash(self, part: str, length: int | None = None) -> bytes:
        """Flash read-back from the flash file, as a probe reads the chip."""
        p = self.layout.part(part)
        with open(self.flash_file, "rb") as f:
            f.seek(p.offset)
            return f.read(p.size if length is None else length)

    @asynccontextmanager
    async def client(self, timeout: float = 3.0):
        transport = SMPSerialTransport()
        async with SMPClient(transport, self.console.path, timeout_s=timeout) as client:
            yield client, transport

    def close(self) -> None:
        self.console.close()
        self.board.close()


async def read_console_until(transport: SMPSerialTransport, text: str, timeout: float = 5.0, after: str = "") -> str:
    """Console text (not SMP) the board prints, until `text` shows up (behind `after`, when given:
    lines of an earlier boot must not count for the next one)."""
    seen = ""
    deadline = time.monotonic() + timeout

    def found() -> bool:
        return after in seen and text in seen[seen.index(after) + len(after):]

    while not found():
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not on the console within {timeout}s; saw {seen!r}")
        seen += (await transport.read_serial()).decode(errors="replace")
        await asyncio.sleep(0.02)
    return seen


@pytest.fixture(params=VARIANTS)
def variant(request) -> str:
    return request.param


@pytest.fixture
def start_rig(tmp_path, make_image, signer):
    """start_rig(variant, slot0=None) -> a powered Rig; slot0 defaults to a v1.0.0 image."""
    rigs = []

    def start(variant: str, slot0: bytes | None = None) -> Rig:
        bootloader = vmcuboot.build(layout_of(variant), [signer.public])
        r = Rig(variant, tmp_path / f"board{len(rigs)}", bootloader, slot0 or make_image(variant, "1.0.0"))
        rigs.append(r)
        r.board.set_power(True)
        return r

    yield start
    for r in rigs:
        r.close()


@pytest.fixture
def rig(start_rig, variant) -> Rig:
    return start_rig(variant)
