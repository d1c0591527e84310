"""Power-cut conformance sweep, after MCUboot's simulator: how fast rig cuts power at every flash
operation of an update and proves the board still boots.

STM32H7 and STM32L0: an MCUboot upgrade (swap-using-move, test) and the revert that follows, cut
before each of their flash operations in turn (and torn at every 10th). ESP32: an OTA update's
first boot through mark-valid (the bootloader's and the app's otadata writes). After each cut the
board is powered again and the sweep waits for the app's boot line on the console.

The board is the virtual lab's own (rig.sim.board.Board running rig.sim.boot), driven in-process
as MCUboot's simulator drives its bootloader: the figure measures the models and the sweep, not
pyocd or RFC2217 start-up (tests/sim/stm32/test_power_cut.py runs the same sweep through them).
Baseline: the issue's goal, every cut point of all three variants in under 120 s on 2 cores.
"""

import re
import tempfile
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from rich.console import Console
from rich.table import Table

from rig.image import esp_app, esp_partitions, otadata
from rig.image.keys import load_signer
from rig.image.trailer import Trailer
from rig.ota import releases
from rig.sim import boot
from rig.sim.board import Board
from rig.sim.stm32 import vmcuboot
from rig.variants import facts

GOAL_SECONDS = 120.0
BOOT_LINE = re.compile(rb"rig: boot variant=\S+ version=(\S+) ")
# A boot is over at its boot line on the STM32 (the test images never confirm: the next reset
# reverts), and once the app confirmed itself on the ESP32, so that mark-valid is swept too.
DONE = {"stm32h7": BOOT_LINE, "stm32l0": BOOT_LINE, "esp32": re.compile(rb"rig: confirmed")}
TORN_EVERY = 10


class Rig:
    """One board on the bench: its flash file, power, and a console reader."""

    def __init__(self, variant: str, folder: Path, flash: bytes):
        self.layout = facts(variant).layout
        self.done = DONE[variant]
        self.flash_file = folder / "flash.bin"
        self.flash_file.write_bytes(flash)
        self.board = Board(f"{variant}-sweep", variant, self.layout, folder, boot.run)
        self._rx = bytearray()
        self._cond = threading.Condition()
        self.board.add_listener(self._receive)

    def _receive(self, data: bytes) -> None:
        with self._cond:
            self._rx += data
            self._cond.notify_all()

    def restore(self, image: bytes) -> None:
        with open(self.flash_file, "r+b") as f:  # in place: the board's memory map stays valid
            f.write(image)

    def boot(self, cut_at: int | None = None, tear: bool = False, timeout: float = 10.0) -> str | None:
        """Power on (with a cut armed at flash operation `cut_at`); the version the app last reported."""
        with self._cond:
            self._rx.clear()
        if cut_at is not None:
            self.board.arm_cut(cut_at, tear=tear, off_time=0.0)
        self.board.set_power(True)
        with self._cond:
            found = self._cond.wait_for(lambda: self.done.search(self._rx), timeout)
            version = BOOT_LINE.findall(self._rx)[-1].decode() if found else None
        self.board.set_power(False)
        self.board.flash.disarm()
        return version

    def ops(self, image: bytes) -> int:
        self.restore(image)
        start = self.board.flash.ops
        self.boot()
        return self.board.flash.ops - start

    def close(self):
        self.board.close()


def _signer(folder: Path):
    key = ec.generate_private_key(ec.SECP256R1())
    path = folder / "key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return load_signer(path)


def _mcuboot_flash(variant: str, signer) -> bytes:
    """Bootloader, 1.0.0 in slot0, 2.0.0 (never confirms) in slot1 marked for a test swap."""
    layout = facts(variant).layout
    flash = bytearray([layout.geometry.erased]) * layout.geometry.size

    def put(partition: str, data: bytes, offset: int = 0):
        at = layout.part(partition).offset + offset
        flash[at : at + len(data)] = data

    def image(version: str) -> bytes:
        return releases.stm32_image(variant, version, signer, "no-confirm")

    put("mcuboot", vmcuboot.build(layout, [signer.public]))
    put("slot0", image("1.0.0"))
    put("slot1", image("2.0.0"))
    for off, data in Trailer.for_layout(layout, "slot1").mark_test():
        put("slot1", data, off)
    return bytes(flash)


def _esp32_flash() -> bytes:
    """ota_0 runs 1.0.0 (VALID); 2.0.0 was downloaded into ota_1 and selected (NEW)."""
    layout = facts("esp32").layout
    flash = bytearray(b"\xff" * layout.geometry.size)
    table, _ = otadata.Otadata.initial().boot_next(0, apps=2)
    table, _ = table.with_state(0, otadata.State.VALID).boot_next(1, apps=2)
    for offset, data in ((layout.part("bootloader").offset, esp_app.bootloader_image()),
                         (esp_partitions.OFFSET, esp_partitions.build(layout)),
                         (layout.part("otadata").offset, table.pack()),
                         (layout.part("ota_0").offset, esp_app.app_image("1.0.0")),
                         (layout.part("ota_1").offset, esp_app.app_image("2.0.0"))):
        flash[offset : offset + len(data)] = data
    return bytes(flash)


def sweep(variant: str, folder: Path, signer) -> dict:
    start_image = _esp32_flash() if variant == "esp32" else _mcuboot_flash(variant, signer)
    rig = Rig(variant, folder, start_image)
    try:
        phases = [("update", start_image)]
        if variant != "esp32":  # the revert starts from the flash the upgrade left behind
            rig.restore(start_image)
            rig.boot()
            phases.append(("revert", rig.flash_file.read_bytes()))
        t0 = time.perf_counter()
        points = bricked = 0
        ops = {}
        for name, image in phases:
            ops[name] = rig.ops(image)
            for op in range(ops[name]):
                for tear in (False, True) if op % TORN_EVERY == 0 else (False,):
                    rig.restore(image)
                    points += 1
                    bricked += rig.boot(cut_at=op, tear=tear) is None
        seconds = time.perf_counter() - t0
    finally:
        rig.close()
    return {"variant": variant, "ops": ops, "points": points, "bricked": bricked, "seconds": seconds}


def main() -> None:
    out = Console(highlight=False, width=120)
    table = Table(title="power-cut sweep: every flash operation of an update (and revert), torn at every "
                        f"{TORN_EVERY}th", title_justify="left")
    for column in ("variant", "flash ops", "cut points", "bricked", "seconds", "points/s"):
        table.add_column(column, justify="right" if column != "variant" else "left")
    total = 0.0
    with tempfile.TemporaryDirectory(prefix="rig-sweep-") as tmp:
        signer = _signer(Path(tmp))
        for variant in ("stm32h7", "stm32l0", "esp32"):
            folder = Path(tmp) / variant
            folder.mkdir()
            r = sweep(variant, folder, signer)
            total += r["seconds"]
            table.add_row(variant, " + ".join(f"{k} {v}" for k, v in r["ops"].items()), str(r["points"]),
                          str(r["bricked"]), f"{r['seconds']:.1f}", f"{r['points'] / r['seconds']:.0f}")
    out.print(table)
    verdict = "met" if total < GOAL_SECONDS else "NOT met"
    out.print(f"whole sweep, all variants: {total:.1f} s (goal: under {GOAL_SECONDS:.0f} s on 2 cores) - {verdict}")


if __name__ == "__main__":
    main()
