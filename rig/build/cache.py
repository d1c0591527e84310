"""The reference firmware of one variant, fault mode and version, built on demand and kept.

Campaigns and tests need rig's real STM32 firmware at many versions (a virtual board with the
emulated core executes it). The build is reproducible (docs/firmware.md), so a binary is kept
under a key of everything that decides its bytes - the firmware sources, the generated layout
files, variant, fault, version and the compiler - in $XDG_CACHE_HOME/rig/firmware (default
~/.cache/rig/firmware); a build of a missing key takes a second or two. Concurrent builders of one key each build into
a folder of their own and move the result into place, so a reader never sees a partial file.
"""

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from rig.build import layout_header, pipeline, stm32, toolchain
from rig.image.mcuboot import Version


def _key(variant: str, fault: str, version: Version) -> str:
    h = hashlib.sha256()
    for path in sorted(stm32.FIRMWARE.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(stm32.FIRMWARE).as_posix().encode() + b"\0" + path.read_bytes())
    h.update(layout_header.header(variant).encode() + layout_header.linker_memory(variant).encode())
    h.update(f"{variant}\0{fault}\0{version}\0{toolchain.tool('gcc')}".encode())
    return h.hexdigest()[:24]


def binary(variant: str, fault: str, version: Version) -> bytes:
    """rig-<variant>-<fault>.bin of `rig build --version <version>` (unsigned, for slot0 behind a
    0x200-byte header)."""
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = cache_home / "rig" / "firmware" / _key(variant, fault, version)
    path = folder / f"rig-{variant}-{fault}.bin"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=folder))
        try:
            pipeline.build(scratch, variants=(variant,), version=str(version), faults=(fault,))
            for produced in scratch.glob(f"rig-{variant}-{fault}.*"):
                os.replace(produced, folder / produced.name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return path.read_bytes()
