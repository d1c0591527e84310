"""The reference firmware's code and RAM per part, from the linked ELF of `rig build` (fault none).

flash = text + data (the image MCUboot holds); RAM = data + bss + the 1 KiB main stack the linker
script guarantees (sections.ld's ASSERT) + the 32-byte .noinit boot counter. The applier's share
is the one object delta_upload.c keeps all of its RAM in (rdelta state with the codec, the page
buffer, the coroutine's stack). Goals (issue 14): STM32L0 app <= 32 KiB flash and <= 8 KiB RAM,
the P1 applier's share <= 2 KiB.
"""

import shutil
import subprocess
import tempfile
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
