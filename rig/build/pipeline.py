"""`rig build`: every variant x fault mode, reproducibly, into one directory with a manifest.

Outputs land atomically: each file is made in a scratch directory inside DIR and renamed into
place, and the manifest is written last, so a reader of DIR/manifest.json never sees a file
the manifest does not describe half-written.
"""

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rig.atomic import write_bytes
from rig.build import defects, manifest, stm32, toolchain
from rig.errors import RigError
from rig.image import appdesc, esp_app
from rig.image.keys import PublicKey
from rig.image.mcuboot import Version
from rig.sim.stm32 import vmcuboot
from rig.variants import NAMES, VARIANTS, Family, facts

DEFAULT_OUT = Path("build/firmware")
DEFAULT_VERSION = "1.0.0"
STM32_NAMES = tuple(v for v in NAMES if VARIANTS[v].family is Family.STM32)  # the ones that run rig's C app


@dataclass(frozen=True)
class Result:
    manifest: Path
    artifacts: list[dict]
    sizes: dict[str, dict]  # variant -> text/data/bss of its fault-free build (STM32 only)


def _artifact(path: Path, variant: str, version: Version, fault: str | None, kind: str, **extra) -> dict:
    data = path.read_bytes()
    return {"variant": variant, "version": str(version), "fault": fault, "kind": kind, "file": path.name,
            "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), **extra}


def tool_env(epoch: int) -> dict[str, str]:
    # A minimal, fixed environment: locale, time zone and stray GCC_*/CPATH variables of the
    # caller's shell cannot leak into the bytes.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC",
            "SOURCE_DATE_EPOCH": str(epoch)}


def build(out_dir: Path = DEFAULT_OUT, variants: tuple[str, ...] = NAMES, version: str = DEFAULT_VERSION,
          faults: tuple[str, ...] = appdesc.FAULTS, secure_version: int = 0,
          progress: Callable[[str], None] | None = None, jobs: int | None = None,
          cflags: tuple[str, ...] = (), defect: str | None = None,
          bootloader_keys: tuple[PublicKey, ...] = ()) -> Result:
    """Build the images; `progress(label)` is called once per finished image.

    cflags: extra compiler flags for the STM32 firmware, after rig's own (`("-O2",)` builds the
    same release with another optimisation level); the manifest records them.
    defect: a deliberately broken build of the C firmware (rig.build.defects), STM32 variants only.
    bootloader_keys: the keys a virtual STM32's MCUboot trusts; with them, each STM32 variant also
    gets rig-<variant>-mcuboot-virtual.bin (rig.sim.stm32.vmcuboot) for its mcuboot partition."""
    ver = Version.parse(version)
    defects.check(defect)
    for v in variants:
        if v not in VARIANTS:
            raise RigError(f"variant {v!r} unknown; choose from {', '.join(NAMES)}")
        if defect and VARIANTS[v].family is not Family.STM32:
            raise RigError(f"defect {defect!r} is a build option of the C firmware; {v} runs no rig C code "
                           "(its app is modelled); build the STM32 variants")
    for f in faults:
        if f not in appdesc.FAULTS:
            raise RigError(f"fault mode {f!r} unknown; choose from {', '.join(appdesc.FAULTS)}")
    epoch = esp_app.source_date_epoch()
    env = tool_env(epoch)
    out_dir = Path(out_dir).resolve()  # the compiler runs in firmware/, not in the caller's folder
    stm = sorted(v for v in variants if VARIANTS[v].family is Family.STM32)
    gcc_version = "none"
    if stm:
        if not (stm32.FIRMWARE / "common" / "main.c").is_file():
            raise RigError(f"firmware sources not found in {stm32.FIRMWARE}; run rig from a checkout of the "
                           "repository (pip install -e .), where firmware/ sits beside rig/")
        gcc = toolchain.tool("gcc")
        toolchain.check_newlib(gcc, env)
        gcc_version = toolchain.run([gcc, "--version"], Path.cwd(), env).splitlines()[0]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RigError(f"cannot create output directory {out_dir}: {exc.strerror}") from None

    artifacts: list[dict] = []
    sizes: dict[str, dict] = {}
    scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=out_dir))
    try:
        jobs_list = [(v, f) for v in stm for f in sorted(faults)]
        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
            futures = [pool.submit(stm32.build, v, f, ver, scratch, env, tuple(cflags), defect) for v, f in jobs_list]
            for fut in futures:
                fw = fut.result()
                for produced in (fw.elf, fw.bin):
                    os.replace(produced, out_dir / produced.name)
                artifacts.append(_artifact(out_dir / fw.bin.name, fw.variant, ver, fw.fault, "app",
                                           elf=fw.elf.name, sizes=fw.sizes, **({"defect": defect} if defect else {})))
                if fw.fault == "none" or fw.variant not in sizes:
                    sizes[fw.variant] = fw.sizes
                if progress:
                    progress(f"{fw.variant} {fw.fault}")
        for v in stm if bootloader_keys else ():
            path = out_dir / f"rig-{v}-mcuboot-virtual.bin"
            write_bytes(path, vmcuboot.build(facts(v).layout, list(bootloader_keys)))
            artifacts.append(_artifact(path, v, ver, None, "bootloader", virtual=True))
        if any(VARIANTS[v].family is Family.ESP32 for v in variants):
            artifacts += _build_esp32(out_dir, ver, faults, secure_version, epoch, progress)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    path = manifest.write(out_dir, str(ver), epoch, gcc_version, artifacts, list(cflags))
    return Result(path, artifacts, sizes)


def _build_esp32(out_dir: Path, ver: Version, faults, secure_version: int, epoch: int, progress) -> list[dict]:
    made = []
    for fault in sorted(faults):
        path = out_dir / f"rig-esp32-{fault}.bin"
        write_bytes(path, esp_app.app_image(ver, fault, secure_version, epoch=epoch))
        made.append(_artifact(path, "esp32", ver, fault, "app", secure_version=secure_version))
        if progress:
            progress(f"esp32 {fault}")
    path = out_dir / "rig-esp32-bootloader.bin"
    write_bytes(path, esp_app.bootloader_image(epoch=epoch))
    made.append(_artifact(path, "esp32", ver, None, "bootloader", offset=esp_app.BOOTLOADER_OFFSET))
    if progress:
        progress("esp32 bootloader")
    return made


def count(variants: tuple[str, ...], faults: tuple[str, ...]) -> int:
    """How many images build() makes: for a progress bar's total."""
    esp32 = any(VARIANTS[v].family is Family.ESP32 for v in variants)
    return len(variants) * len(faults) + (1 if esp32 else 0)  # + the ESP32's second-stage bootloader
