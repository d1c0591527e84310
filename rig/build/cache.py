"""Built firmware on demand: one variant, version, fault mode and defect, compiled once and kept.

A campaign that updates a board from 1.0.0 to 1.0.1 needs those two builds of the real app (the
virtual STM32 boards execute what they are given); compiling them on every run would cost
seconds each. `app()` returns the raw binary and ELF of `rig build` for one combination from a
cache keyed by everything that changes their bytes - every file under firmware/, the generated
layout files, the compiler flags, the toolchain's version line, and the version, fault mode and
defect asked for - so an edit to the sources or layouts builds again and nothing stale is served.

    app(variant, version, fault="none", defect=None) -> Built(bin, elf)     (paths in the cache)
    binary(variant, fault, version) -> bytes                                 (app()'s .bin, read)

The cache is $XDG_CACHE_HOME/rig/firmware (default ~/.cache/rig/firmware); entries appear whole
(built in a scratch folder, renamed into place), so concurrent campaigns never read half a build.
"""

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rig.build import defects, layout_header, stm32, toolchain
from rig.build.pipeline import tool_env
from rig.errors import RigError
from rig.image import appdesc, esp_app
from rig.image.mcuboot import Version
from rig.variants import VARIANTS, Family


@dataclass(frozen=True)
class Built:
    bin: Path
    elf: Path


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rig" / "firmware"


def _key(variant: str, version: Version, fault: str, defect: str | None, gcc: str) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in stm32.FIRMWARE.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(stm32.FIRMWARE)).encode() + b"\0" + path.read_bytes())
    for part in (layout_header.header(variant), layout_header.linker_memory(variant), " ".join(stm32.C_FLAGS),
                 " ".join(stm32.LINK_FLAGS), gcc, variant, str(version), fault, defect or ""):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:20]


def app(variant: str, version: str, fault: str = "none", defect: str | None = None) -> Built:
    """The app of `rig build --variant V --version X --fault F [--defect D]`, built once."""
    if variant not in VARIANTS or VARIANTS[variant].family is not Family.STM32:
        raise RigError(f"variant {variant!r} runs no rig C firmware; built firmware exists for "
                       f"{', '.join(v for v in VARIANTS if VARIANTS[v].family is Family.STM32)}")
    if fault not in appdesc.FAULTS:
        raise RigError(f"fault mode {fault!r} unknown; choose from {', '.join(appdesc.FAULTS)}")
    defects.check(defect)
    ver = Version.parse(version)
    env = tool_env(esp_app.source_date_epoch())
    gcc = toolchain.tool("gcc")
    toolchain.check_newlib(gcc, env)
    gcc_version = toolchain.run([gcc, "--version"], Path.cwd(), env).splitlines()[0]
    entry = _cache_dir() / _key(variant, ver, fault, defect, gcc_version)
    stem = defects.stem(variant, fault, defect)
    built = Built(entry / f"{stem}.bin", entry / f"{stem}.elf")
    if built.bin.is_file() and built.elf.is_file():
        return built
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=entry.parent))
    except OSError as exc:
        raise RigError(f"cannot write built firmware to {entry.parent}: {exc.strerror}; "
                       "set XDG_CACHE_HOME to a writable directory") from None
    try:
        fw = stm32.build(variant, fault, ver, scratch / "gen", env, defect=defect)
        done = scratch / "done"
        done.mkdir()
        os.replace(fw.bin, done / fw.bin.name)
        os.replace(fw.elf, done / fw.elf.name)
        try:
            os.rename(done, entry)  # atomic: the entry appears whole
        except OSError:
            if not built.bin.is_file():  # not a concurrent builder that got there first
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return built


def binary(variant: str, fault: str, version: Version) -> bytes:
    """rig-<variant>-<fault>.bin of `rig build --version <version>` (unsigned, for slot0 behind a
    0x200-byte header)."""
    return app(variant, str(version), fault).bin.read_bytes()
