"""The virtual STM32's debug port under a loaded host: does pyocd always get the core it asks for?

Per part, a lab board running the reference firmware on the emulated core, its SWD server
announced in a private lab registry (pyocd finds the probe through rig's plugin), and LOADERS
busy Python processes loading the host. Then ROUNDS rounds of what CI's failing test did: power
the board on, wait a random moment (0-0.6 s: the board is in MCUboot's model or just started the
firmware), and erase a sector twice through pyocd's Python API, each session halting the core
and leaving it halted; the board is then power-cycled and must print `rig: alive` again. A round
fails on pyocd's error (`flash init timed out` was the defect: a core left halted after the
algorithm resumed by the next connect's DHCSR write) or on a silent console.
It prints the rounds that passed and the seconds per round; run it by name (it loads the host):
`python -m bench debug-port`.
"""

import json
import multiprocessing
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console

from bench.needs import firmware_missing
from rig.build import cache
from rig.image import mcuboot
from rig.image.keys import load_signer, make_p256_pem
from rig.image.mcuboot import Version
from rig.sim import boot
from rig.sim.board import Board
from rig.sim.stm32 import vmcuboot
from rig.sim.stm32.parts import PARTS
from rig.sim.stm32.swd import SwdServer
from rig.variants import facts

ROUNDS = 20
LOADERS = 3  # busy processes beside the board (the host has two cores)


def _busy() -> None:
    while True:
        pass


def _alive(out: bytearray, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while b"rig: alive" not in out:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _rounds(variant: str, tmp: Path, signer) -> tuple[int, float]:
    from pyocd.core.helpers import ConnectHelper
    from pyocd.flash.eraser import FlashEraser

    layout = facts(variant).layout
    g = layout.geometry
    board = Board(f"{variant}-1", variant, layout, tmp / variant, boot.run)
    for name, data in (("mcuboot", vmcuboot.build(layout, [signer.public])),
                       ("slot0", mcuboot.sign(cache.binary(variant, "none", Version.parse("1.0.0")), signer, "1.0.0"))):
        board.flash.write(layout.part(name).offset, data + bytes([g.erased]) * (-len(data) % g.write_size))
    swd = SwdServer(board)
    uid = f"RIGVIRT-BENCH-{variant.upper()}-{os.getpid()}"
    (tmp / "runtime" / "labs").mkdir(parents=True, exist_ok=True)
    (tmp / "runtime" / "labs" / f"bench-{variant}.json").write_text(json.dumps({"pid": os.getpid(), "boards": {
        board.id: {"variant": variant, "swd": {"host": "127.0.0.1", "port": swd.port, "unique_id": uid}}}}))
    out = bytearray()
    board.add_listener(out.extend)
    sector = g.base + layout.part("slot1").offset + layout.part("slot1").size - g.sector_size
    options = {"connect_mode": "halt", "resume_on_disconnect": False, "hide_programming_progress": True}
    target = PARTS[variant].target_type
    passed, started = 0, time.monotonic()
    try:
        for _ in range(ROUNDS):
            board.set_power(False)
            board.set_power(True)
            time.sleep(random.uniform(0, 0.6))
            try:
                for _ in range(2):
                    with ConnectHelper.session_with_chosen_probe(unique_id=uid, target_override=target,
                                                                 options=options) as session:
                        FlashEraser(session, FlashEraser.Mode.SECTOR).erase([(sector, sector + g.sector_size)])
            except Exception as exc:  # noqa: BLE001 - pyocd's error is the round's verdict
                print(f"  {variant}: {type(exc).__name__}: {exc}")
                continue
            out.clear()
            board.set_power(False)
            board.set_power(True)
            passed += _alive(out)
    finally:
        swd.close()
        board.close()
    return passed, (time.monotonic() - started) / ROUNDS


def main() -> None:
    console = Console(width=160)
    if firmware_missing(console, "bench_debug_port"):
        return
    tmp = Path(tempfile.mkdtemp(prefix="rig-bench-debug-"))
    saved = os.environ.get("RIG_RUNTIME_DIR")
    os.environ["RIG_RUNTIME_DIR"] = str(tmp / "runtime")
    loaders = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(LOADERS)]
    try:
        key = tmp / "key.pem"
        make_p256_pem(key)
        signer = load_signer(key)
        for process in loaders:
            process.start()
        for variant in ("stm32l0", "stm32h7"):
            passed, seconds = _rounds(variant, tmp, signer)
            console.print(f"{PARTS[variant].target_type}: power-on, 2 pyocd erase sessions left halted, firmware "
                          f"back: {passed}/{ROUNDS} rounds passed ({seconds:.1f} s per round, {LOADERS} busy "
                          "processes beside)")
    finally:
        for process in loaders:
            process.terminate()
        if saved is None:
            os.environ.pop("RIG_RUNTIME_DIR", None)
        else:
            os.environ["RIG_RUNTIME_DIR"] = saved
        shutil.rmtree(tmp, ignore_errors=True)
