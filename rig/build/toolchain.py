"""The Arm GNU toolchain rig.build drives, found on PATH, with one-line errors when it is not."""

import re
import shutil
import subprocess
from pathlib import Path

from rig.errors import RigError

FIX = "sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi"


def tool(name: str) -> str:
    path = shutil.which(f"arm-none-eabi-{name}")
    if path is None:
        raise RigError(f"arm-none-eabi-{name} not found on PATH; install the Arm toolchain: {FIX}")
    return path


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run a toolchain command; its own diagnostics become the error's one line."""
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr + proc.stdout).strip().splitlines()
        first = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "no output")
        raise RigError(f"{Path(args[0]).name} failed: {first.strip()}")
    return proc.stdout


def check_newlib(gcc: str, env: dict[str, str]) -> None:
    """newlib-nano comes in a separate Debian package; without it the link fails obscurely."""
    out = run([gcc, "-mcpu=cortex-m0plus", "-mthumb", "--specs=nano.specs", "-print-file-name=libc_nano.a"],
              Path.cwd(), env).strip()
    if not Path(out).is_absolute():
        raise RigError(f"newlib-nano (libc_nano.a) not found for arm-none-eabi-gcc; install it: {FIX}")


def size(elf: Path, cwd: Path, env: dict[str, str]) -> dict[str, int]:
    """text/data/bss of an ELF, as `arm-none-eabi-size` (Berkeley format) prints them."""
    out = run([tool("size"), "-B", str(elf)], cwd, env)
    rows = out.strip().splitlines()
    if len(rows) < 2 or not re.match(r"\s*\d+\s+\d+\s+\d+", rows[1]):
        raise RigError(f"arm-none-eabi-size printed something unexpected for {elf.name}: {out.strip()[:80]}")
    text, data, bss = (int(x) for x in rows[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}
