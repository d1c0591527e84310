"""The reference firmware's code and RAM per part, from the linked ELF of `rig build` (fault none);
then the firmware at work on the virtual lab's emulated core: boot to `rig: alive`, and SMP upload
rates of a full image and of a delta patch the app applies while it streams (smpclient on a pty).

flash = text + data (the image MCUboot holds); RAM = data + bss + the 1 KiB main stack the linker
script guarantees (sections.ld's ASSERT) + the 32-byte .noinit boot counter. The applier's share
is the one object delta_upload.c keeps all of its RAM in (rdelta state with the codec, the page
buffer, the coroutine's stack). Goals (issue 14): STM32L0 app <= 32 KiB flash and <= 8 KiB RAM,
the P1 applier's share <= 2 KiB.
"""

import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
import tty
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rig.build import STM32_NAMES, build
from rig.build.toolchain import tool
from rig.errors import RigError
from rig.variants import facts

MAIN_STACK = 0x400  # sections.ld: ASSERT(_ebss + 0x400 <= _estack)
NOINIT = 0x20
APPLIER_SYMBOL = "delta"
GOALS = {"stm32l0": (32 * 1024, 8 * 1024, 2 * 1024)}  # flash, RAM, applier share


def symbol_size(elf: Path, name: str) -> int:
    out = subprocess.run([tool("nm"), "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == name:
            return int(parts[1], 16)
    raise LookupError(name)


def main() -> None:
    console = Console()
    try:
        tool("gcc")
    except RigError as exc:
        console.print(f"bench_firmware: skipped ({exc})")
        return
    tmp = Path(tempfile.mkdtemp())
    try:
        result = build(tmp, variants=STM32_NAMES, version="1.0.0", faults=("none",))
        table = Table(title="reference firmware per part (rig build, fault none), bytes", title_justify="left")
        for column in ("part", "profile", "flash", "RAM", "applier RAM", "goals"):
            table.add_column(column, justify="left" if column in ("part", "goals") else "right")
        met = True
        for variant in STM32_NAMES:
            s = result.sizes[variant]
            flash = s["text"] + s["data"]
            ram = s["data"] + s["bss"] + MAIN_STACK + NOINIT
            applier = symbol_size(tmp / f"rig-{variant}-none.elf", APPLIER_SYMBOL)
            goal = GOALS.get(variant)
            verdict = "-"
            if goal:
                ok = flash <= goal[0] and ram <= goal[1] and applier <= goal[2]
                met = met and ok
                verdict = "met" if ok else "NOT met"
            table.add_row(variant, facts(variant).delta_profile.upper(), f"{flash:,}", f"{ram:,}", f"{applier:,}",
                          verdict)
        console.print(table)
        console.print("RAM = data + bss + 1 KiB main stack + 32 B .noinit; goals (STM32L0): <= 32 KiB flash, "
                      "<= 8 KiB RAM, P1 applier <= 2 KiB")
        console.print(f"firmware budgets: {'all met' if met else 'NOT all met'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    smp_table(console)


# -- the firmware at work: on the virtual lab's emulated core, driven by smpclient over a pty


class _Part:
    """One part running a signed image from slot0 on rig.sim.stm32's machine, its console on a pty."""

    def __init__(self, variant: str, image: bytes, folder: Path):
        from rig.image.layouts import MCUBOOT_HEADER_SIZE
        from rig.sim.flash import Flash
        from rig.sim.stm32 import flashctl
        from rig.sim.stm32.clock import WallClock
        from rig.sim.stm32.machine import Machine
        from rig.sim.stm32.parts import PARTS

        layout = facts(variant).layout
        slot0 = layout.part("slot0")
        content = bytearray([layout.geometry.erased]) * layout.geometry.size
        content[slot0.offset : slot0.offset + len(image)] = image
        (folder / "flash.bin").write_bytes(bytes(content))
        self.flash = Flash(folder / "flash.bin", layout.geometry)
        ctl = flashctl.for_part(PARTS[variant], self.flash, flashctl.OptionBytes(folder / "ob.json"), lambda: None)
        self.out = bytearray()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.machine = Machine(PARTS[variant], self.flash, ctl, self._transmit, WallClock())
        self._halting = False
        self.started = time.monotonic()
        self.machine.reset("power-on", layout.geometry.base + slot0.offset + MCUBOOT_HEADER_SIZE)
        self._threads = [threading.Thread(target=lambda: self.machine.run(stop=lambda: self._halting), daemon=True),
                         threading.Thread(target=self._pump, daemon=True)]
        for t in self._threads:
            t.start()

    def _transmit(self, data: bytes) -> None:
        self.out += data
        try:
            os.write(self._master, data)
        except BlockingIOError:
            pass

    def _pump(self) -> None:
        while not self._halting:
            if select.select([self._master], [], [], 0.2)[0]:
                self.machine.receive(os.read(self._master, 4096))

    def wait_for(self, text: bytes, timeout: float = 30.0) -> float:
        """Seconds from power-on until the console printed text."""
        deadline = time.monotonic() + timeout
        while text not in self.out:
            if time.monotonic() > deadline:
                raise RigError(f"bench_firmware: {text!r} not seen within {timeout:g} s")
            time.sleep(0.01)
        return time.monotonic() - self.started

    def close(self) -> None:
        self._halting = True
        self.machine.clock.wake()
        self.machine.cpu.request_stop()
        for t in self._threads:
            t.join()
        self.machine.close()
        self.flash.close()
        os.close(self._master)
        os.close(self._slave)


def _smp_figures(variant: str, signer, folder: Path) -> tuple[float, float, int, float, int]:
    """boot-to-alive s; full image KiB/s and bytes; patch KiB/s and bytes (old 1.0.0 none -> new 1.0.1 no-confirm)."""
    import asyncio

    from smpclient import SMPClient
    from smpclient.requests.image_management import ImageErase
    from smpclient.transport.serial import SMPSerialTransport

    from rig import delta
    from rig.build import cache
    from rig.image import mcuboot
    from rig.image.layouts import MCUBOOT_HEADER_SIZE

    old = mcuboot.sign(cache.binary(variant, "none", mcuboot.Version.parse("1.0.0")), signer, "1.0.0",
                       header_size=MCUBOOT_HEADER_SIZE)
    new = mcuboot.sign(cache.binary(variant, "no-confirm", mcuboot.Version.parse("1.0.1")), signer, "1.0.1",
                       header_size=MCUBOOT_HEADER_SIZE)
    patch = delta.make(old, new, facts(variant).delta_profile).data
    part = _Part(variant, old, folder)
    try:
        alive = part.wait_for(b"rig: alive")

        async def upload(client, data: bytes) -> float:
            await client.request(ImageErase(slot=1))  # nothing of an earlier upload to resume or match
            start = time.monotonic()
            async for _ in client.upload(data, first_timeout_s=60):
                pass
            return time.monotonic() - start

        async def session():
            client = SMPClient(SMPSerialTransport(), part.path, timeout_s=30)
            await client.connect()
            try:
                return await upload(client, new), await upload(client, patch)
            finally:
                await client.disconnect()

        full_s, patch_s = asyncio.run(session())
    finally:
        part.close()
    return alive, len(new) / 1024 / full_s, len(new), len(patch) / 1024 / patch_s, len(patch)


def smp_table(console: Console) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from rig.image.keys import load_signer

    with tempfile.TemporaryDirectory() as tmp:
        pem = Path(tmp) / "key.pem"
        pem.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        signer = load_signer(pem)
    table = Table(title="the firmware on the emulated core, smpclient on its console pty (patch: applied "
                        "while it streams)", title_justify="left")
    for column in ("part", "boot to alive", "SMP full image", "SMP delta patch"):
        table.add_column(column, justify="left" if column == "part" else "right")
    for variant in STM32_NAMES:
        with tempfile.TemporaryDirectory() as tmp:
            alive, full, full_size, patch, patch_size = _smp_figures(variant, signer, Path(tmp))
        table.add_row(variant, f"{alive:.2f} s", f"{full:.1f} KiB/s ({full_size:,} B)",
                      f"{patch:.1f} KiB/s ({patch_size:,} B)")
    console.print(table)
