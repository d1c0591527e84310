"""Release folders made from rig's reference images, for the demo, the tests and the benchmark.

    make_release(folder, "2.0.0", floors={"stm32l0": 1}, faults={"stm32l0": "crash-on-boot"},
                 rollback="../1.0.0/release.yaml")  ->  folder/release.yaml and one image per variant

The images are the OTA campaigns' (rig.ota.releases): signed MCUboot images for the STM32s, an
ESP-IDF app image for the ESP32, each carrying its variant in rig's app descriptor.
"""

from pathlib import Path

import yaml

from rig.atomic import write_bytes, write_text
from rig.image.keys import load_signer, make_p256_pem
from rig.ota import releases
from rig.variants import NAMES


def make_release(folder: Path, version: str, key: Path | None = None, floors: dict[str, int] | None = None,
                 faults: dict[str, str] | None = None, features: list[str] | None = None,
                 rollback: str | None = None, variants=NAMES, code_size: int | None = None) -> Path:
    """code_size: bytes per image (rig.ota.releases' `size`: the ESP32's modelled code, an STM32
    firmware binary padded up to it; default as big as the campaigns' images); fleet tests use a
    few KiB, since a thousand downloads of each cost the machine time."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = key or folder.parent / "release-key.pem"
    make_p256_pem(key)
    signer = load_signer(key)
    arts = {}
    for variant in variants:
        floor = (floors or {}).get(variant, 0)
        fault = (faults or {}).get(variant, "none")
        data = releases.image(variant, version, signer, fault, floor, size=code_size)
        name = f"app-{variant}-{version}.bin"
        write_bytes(folder / name, data)
        arts[variant] = {"file": name, "floor": floor, "features": list(features or [])}
    doc = {"version": version, "artefacts": arts}
    if rollback:
        doc["rollback"] = rollback
    path = folder / "release.yaml"
    write_text(path, yaml.safe_dump(doc, sort_keys=False))
    return path
