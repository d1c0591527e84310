"""The virtual STM32s' emulated core (rig/sim/stm32): how fast it executes and what a board costs.

- instructions per second: a loop of loads, stores, ALU operations and a branch, executed by each
  part's core model for two seconds (unicorn's own speed plus rig's per-slice work);
- boot: a lab board (rig.sim.board.Board, as the lab runs it) from power-on through MCUboot's
  model to the firmware's first line and to `rig: alive uptime=1` (the firmware prints it after
  one second of its own time);
- idle CPU: three boards running the reference firmware (which waits in WFI between SysTick
  interrupts, 1 kHz), as a share of one host core over five seconds;
- SMP upload: a signed image and a delta patch sent with smpclient over a board's console pty,
  the firmware writing slot1 (115200 baud console, paced as on the line: 11.25 KiB/s of line
  bytes, about 8 KiB/s of image once SMP's base64 framing is on it), and the host CPU the
  board's thread spent on it (what a loaded CI host must have to spare; the wall time follows
  the host's load, the CPU much less).
Figures vary with the host's load; nothing here is a verdict.
"""

import asyncio
import shutil
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from unicorn import arm_const as a

from bench.needs import firmware_missing
from rig import delta
from rig.build import cache
from rig.errors import RigError
from rig.image import mcuboot
from rig.image.keys import load_signer, make_p256_pem
from rig.image.mcuboot import Version
from rig.sim import boot
from rig.sim.board import Board
from rig.sim.flash import Flash
from rig.sim.pty_console import PtyConsole
from rig.sim.stm32 import flashctl, vmcuboot
from rig.sim.stm32.clock import WallClock
from rig.sim.stm32.machine import Machine
from rig.sim.stm32.parts import PARTS
from rig.variants import facts

PARTS_MEASURED = ("stm32h7", "stm32l0")
# ldr r3,[r1]; adds r3,#1; eors r3,r0; str r3,[r1]; lsls r0,r0,#1; subs r2,#1; bne loop; b (restart)
LOOP = bytes.fromhex("0b68" "0133" "4340" "0b60" "4000" "013a" "f8d1" "f6e7")


def _instructions_per_second(variant: str, tmp: Path) -> float:
    layout = facts(variant).layout
    flash = Flash(tmp / f"ips-{variant}.bin", layout.geometry)
    g = layout.geometry
    code = LOOP + bytes([g.erased]) * (-len(LOOP) % g.write_size)
    flash.write(0x1000, code)
    part = PARTS[variant]
    controller = flashctl.for_part(part, flash, flashctl.OptionBytes(tmp / "ob.json"), lambda: None)
    machine = Machine(part, flash, controller, lambda data: None, WallClock())
    uc = machine.cpu.uc

    uc.reg_write(a.UC_ARM_REG_R1, 0x2000_0000)  # RAM on both parts
    executed, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2.0:
        uc.reg_write(a.UC_ARM_REG_R2, 100_000)
        uc.emu_start((g.base + 0x1000) | 1, g.base + 0x100E)  # until the bne falls through
        executed += 100_000 * 7
    rate = executed / (time.perf_counter() - start)
    machine.close()
    flash.close()
    return rate


def _board(variant: str, tmp: Path, signer, name: str) -> tuple[Board, bytes]:
    layout = facts(variant).layout
    board = Board(name, variant, layout, tmp / name, boot.run)
    g = layout.geometry

    def put(off: int, data: bytes) -> None:
        board.flash.write(off, data + bytes([g.erased]) * (-len(data) % g.write_size))

    image = mcuboot.sign(cache.binary(variant, "none", Version.parse("1.0.0")), signer, "1.0.0")
    put(layout.part("mcuboot").offset, vmcuboot.build(layout, [signer.public]))
    put(layout.part("slot0").offset, image)
    return board, image


def _until(out: bytearray, text: bytes, timeout: float = 20.0) -> float:
    start = time.monotonic()
    while text not in out:
        if time.monotonic() - start > timeout:
            raise RigError(f"no {text!r} within {timeout} s")
        time.sleep(0.002)
    return time.monotonic()


def _boot_times(variant: str, tmp: Path, signer) -> tuple[float, float]:
    board, _ = _board(variant, tmp, signer, f"boot-{variant}")
    out = bytearray()
    board.add_listener(out.extend)
    start = time.monotonic()
    board.set_power(True)
    first = _until(out, b"rig: boot ") - start
    alive = _until(out, b"rig: alive uptime=1") - start
    board.close()
    return first, alive


def _idle_cpu(tmp: Path, signer) -> float:
    boards = []
    for i, variant in enumerate(("stm32h7", "stm32l0", "stm32h7")):
        board, _ = _board(variant, tmp, signer, f"idle-{i}")
        out = bytearray()
        board.add_listener(out.extend)
        board.set_power(True)
        boards.append((board, out))
    for _, out in boards:
        _until(out, b"rig: alive uptime=1")
    wall, cpu = time.monotonic(), time.process_time()
    time.sleep(5.0)
    share = (time.process_time() - cpu) / (time.monotonic() - wall)
    for board, _ in boards:
        board.close()
    return share


def _upload_rates(variant: str, tmp: Path, signer) -> tuple[tuple[float, float], tuple[float, float], int, int]:
    """(seconds, board thread CPU seconds) of the image's and of the patch's upload, and their sizes."""
    from smpclient import SMPClient
    from smpclient.transport.serial import SMPSerialTransport

    board, running = _board(variant, tmp, signer, f"smp-{variant}")
    pty = PtyConsole(board)
    out = bytearray()
    board.add_listener(out.extend)
    board.set_power(True)
    _until(out, b"rig: alive uptime=1")
    new = mcuboot.sign(cache.binary(variant, "none", Version.parse("2.0.0")), signer, "2.0.0")
    patch = delta.make(running, new, facts(variant).delta_profile).data

    thread = next(t for t in threading.enumerate() if t.name == f"board-{board.id}")
    cpu_clock = time.pthread_getcpuclockid(thread.ident)

    async def timed(data: bytes) -> tuple[float, float]:
        client = SMPClient(SMPSerialTransport(), pty.path, timeout_s=60)
        await client.connect()
        try:
            start, cpu = time.monotonic(), time.clock_gettime(cpu_clock)
            async for _ in client.upload(data, first_timeout_s=60):
                pass
            return time.monotonic() - start, time.clock_gettime(cpu_clock) - cpu
        finally:
            await client.disconnect()

    full = asyncio.run(timed(new))
    patched = asyncio.run(timed(patch))
    pty.close()
    board.close()
    return full, patched, len(new), len(patch)


def main() -> None:
    console = Console(width=160)  # the table's columns unwrapped, also in a log
    if firmware_missing(console, "bench_emulator"):
        return
    tmp = Path(tempfile.mkdtemp(prefix="rig-bench-emulator-"))
    try:
        key = tmp / "key.pem"
        make_p256_pem(key)
        signer = load_signer(key)
        table = Table(title="emulated STM32 core (rig/sim/stm32)", title_justify="left")
        for column in ("part", "instructions/s", "power-on -> 'rig: boot'", "-> 'rig: alive uptime=1'",
                       "SMP upload, image", "SMP upload, patch"):
            table.add_column(column, justify="left" if column == "part" else "right")
        for variant in PARTS_MEASURED:
            ips = _instructions_per_second(variant, tmp)
            first, alive = _boot_times(variant, tmp, signer)
            full, patched, full_size, patch_size = _upload_rates(variant, tmp, signer)
            table.add_row(PARTS[variant].target_type, f"{ips / 1e6:.1f} M", f"{first:.2f} s", f"{alive:.2f} s",
                          f"{full_size / 1024 / full[0]:.1f} KiB/s ({full_size} B, {full[0]:.1f} s, "
                          f"CPU {full[1]:.2f} s)",
                          f"{patch_size / 1024 / patched[0]:.2f} KiB/s ({patch_size} B, {patched[0]:.1f} s, "
                          f"CPU {patched[1]:.2f} s)")
        console.print(table)
        console.print(f"3 idle boards (H7, L0, H7) running the reference firmware: "
                      f"{100 * _idle_cpu(tmp, signer):.1f} % of one host core")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
