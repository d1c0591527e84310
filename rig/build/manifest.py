"""DIR/manifest.json: what a build made, so flashing, signing and tests find images by meaning.

    {"format": 1, "version": "1.2.0+0", "source_date_epoch": 0, "toolchain": "...", "cflags": [],
     "artifacts": [{"variant": "stm32h7", "version": "1.2.0+0", "fault": "none", "kind": "app",
                    "file": "rig-stm32h7-none.bin", "size": 3100, "sha256": "...",
                    "elf": "rig-stm32h7-none.elf", "sizes": {"text": ..., "data": ..., "bss": ...}}]}

kind is "app" (raw STM32 application binary, or ESP-IDF app image) or "bootloader" (fault null:
the ESP32 second-stage placeholder, or - marked "virtual": true - the virtual STM32's MCUboot
blob rig-<variant>-mcuboot-virtual.bin, made with `rig build --key`, which only the virtual lab
boots). A deliberately broken build (`rig build --defect NAME`,
rig.build.defects) has "defect": NAME on each of its images. cflags are the compiler flags added to rig's own (none for
`rig build`). Written atomically: a reader never sees half a manifest.
"""

import json
from pathlib import Path

from rig.atomic import write_text
from rig.errors import RigError

NAME = "manifest.json"
FORMAT = 1


def write(out_dir: Path, version: str, epoch: int, toolchain: str, artifacts: list[dict],
          cflags: list[str] | None = None) -> Path:
    doc = {"format": FORMAT, "version": version, "source_date_epoch": epoch, "toolchain": toolchain,
           "cflags": cflags or [],
           "artifacts": sorted(artifacts, key=lambda a: (a["variant"], a["kind"], a["fault"] or ""))}
    path = out_dir / NAME
    write_text(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


def load(out_dir: Path) -> dict:
    path = Path(out_dir) / NAME
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise RigError(f"{path}: no build manifest; run `rig build --out {out_dir}` first") from None
    except (OSError, ValueError) as exc:
        raise RigError(f"{path}: unreadable build manifest ({exc}); rebuild with `rig build`") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("artifacts"), list):
        raise RigError(f"{path}: not a format-{FORMAT} rig build manifest; rebuild with `rig build`")
    return doc


def find(doc: dict, variant: str, fault: str = "none", kind: str = "app", defect: str | None = None) -> dict:
    """The manifest entry of one image, or a one-line error naming what the build has."""
    for a in doc["artifacts"]:
        if (a["variant"] == variant and a["kind"] == kind and (a["fault"] == fault or kind != "app")
                and a.get("defect") == defect):
            return a
    with_defect = f" with defect {defect}" if defect else ""
    raise RigError(f"the build has no {kind} for {variant} with fault {fault}{with_defect}; "
                   f"rebuild with `rig build --variant {variant}" + (f" --defect {defect}`" if defect else "`"))
