"""The delta applier as the devices get it: firmware/lib cross-built per profile and core.

Code: arm-none-eabi-size of the applier linked alone (entry rdelta_apply, --gc-sections,
newlib-nano's memcpy/memset/memcmp and the libgcc division helpers included). RAM: the state
struct (sizeof(rdelta_t), read from a probe symbol) plus the worst stack path from
-fstack-usage/-fcallgraph-info, excluding the caller's callbacks and the libc leaf helpers;
the flash-page buffer is the caller's and not counted. Goals: P1 <= 4 KiB code and <= 2 KiB RAM;
P2 <= 12 KiB RAM.
"""

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rig.delta.native import SOURCE_DIR

BUILDS = [  # profile, codec define, core
    ("P1", "RDELTA_WITH_LZSS", "cortex-m0plus"),
    ("P1", "RDELTA_WITH_LZSS", "cortex-m7"),
    ("P2", "RDELTA_WITH_LZMA", "cortex-m0plus"),
    ("P2", "RDELTA_WITH_LZMA", "cortex-m7"),
]
GOALS = {"P1": (4096, 2048), "P2": (None, 12288)}
PROBE = '#include "rdelta.h"\nconst unsigned char rdelta_state_probe[sizeof(rdelta_t)];\n'


def _worst_stack(ci_files: list[Path]) -> int:
    """Deepest path through the call graph GCC wrote, from rdelta_apply."""
    frame, calls = {}, {}
    for ci in ci_files:
        text = ci.read_text()
        for title, label in re.findall(r'node: \{ title: "([^"]+)" label: "([^"]+)"', text):
            m = re.search(r"\\n(\d+) bytes", label)
            if m:
                frame[title] = int(m.group(1))
        for src, dst in re.findall(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"', text):
            calls.setdefault(src, set()).add(dst)

    def depth(fn: str, seen: frozenset) -> int:
        if fn in seen:  # the applier has no recursion; guard anyway
            raise ValueError(f"recursion through {fn}")
        return frame.get(fn, 0) + max((depth(c, seen | {fn}) for c in calls.get(fn, ())), default=0)

    return depth("rdelta_apply", frozenset())


def _build(define: str, cpu: str, out: Path) -> tuple[int, int, int]:
    flags = ["-mcpu=" + cpu, "-mthumb", "-Os", "-std=c99", "-ffunction-sections", "-fdata-sections",
             "-fstack-usage", "-fcallgraph-info=su", "-D" + define, "-I", str(SOURCE_DIR)]
    objs = []
    for src in sorted(SOURCE_DIR.glob("*.c")):
        obj = out / (src.stem + ".o")
        subprocess.run(["arm-none-eabi-gcc", *flags, "-c", str(src), "-o", str(obj)], check=True, cwd=out)
        objs.append(str(obj))
    elf = out / "applier.elf"
    subprocess.run(["arm-none-eabi-gcc", *flags[:3], "--specs=nano.specs", "-nostartfiles", "-Wl,--gc-sections",
                    "-Wl,-e,rdelta_apply", *objs, "-o", str(elf)], check=True)
    text = int(subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True,
                              check=True).stdout.splitlines()[1].split()[0])
    probe = out / "probe.c"
    probe.write_text(PROBE)
    subprocess.run(["arm-none-eabi-gcc", *flags[:4], "-D" + define, "-I", str(SOURCE_DIR), "-c", str(probe),
                    "-o", str(out / "probe.o")], check=True)
    nm = subprocess.run(["arm-none-eabi-nm", "-S", str(out / "probe.o")], capture_output=True, text=True,
                        check=True).stdout
    state = int(next(line.split()[1] for line in nm.splitlines() if "rdelta_state_probe" in line), 16)
    return text, state, _worst_stack(sorted(out.glob("*.ci")))


def main() -> None:
    console = Console(highlight=False, width=200)
    if not shutil.which("arm-none-eabi-gcc"):
        console.print("delta applier: arm-none-eabi-gcc not found; install gcc-arm-none-eabi (.ci/setup)")
        return
    table = Table(title="delta applier cross-built (bytes)", title_justify="left")
    for col in ("profile", "core", "code", "state", "worst stack", "RAM", "code goal", "RAM goal"):
        table.add_column(col, justify="left" if col in ("profile", "core") else "right")
    met = True
    for profile, define, cpu in BUILDS:
        with tempfile.TemporaryDirectory() as tmp:
            code, state, stack = _build(define, cpu, Path(tmp))
        code_goal, ram_goal = GOALS[profile]
        ok_code = code_goal is None or code <= code_goal
        ok_ram = state + stack <= ram_goal
        met &= ok_code and ok_ram
        table.add_row(profile, cpu, str(code), str(state), str(stack), str(state + stack),
                      "-" if code_goal is None else f"<= {code_goal} {'yes' if ok_code else 'NO'}",
                      f"<= {ram_goal} {'yes' if ok_ram else 'NO'}")
    console.print(table)
    console.print(f"applier goals: {'all met' if met else 'NOT all met'} (page buffer not counted)")
