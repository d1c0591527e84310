"""Where a device's private key may be, and where it must not be: read it back from the device with
the real tools - pyocd for the STM32 key area, esptool for the ESP32's NVS identity partition
(docs/provisioning.md) - and look for it in raw, hex, base64, DER and PEM forms everywhere the
station wrote: every file of its work folder and the lab's runtime folder, the database as an SQL
dump, its output. The STM32s must be provisioned open (rdp=0) for the probe to read them.
"""

import base64
import sqlite3
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rig.image import nvs as esp32_nvs
from rig.image.layouts import LAYOUTS
from rig.provision import keyarea
from rig.provision.identity import KeyMaker
from rig.variants import Family, Flasher

BIN = Path(sys.executable).parent


class RememberingKeyMaker(KeyMaker):
    """The station's key maker, keeping the device keys it made so a test can search for them."""

    def __init__(self):
        self.made: list = []

    def generate(self):
        self.made.append(super().generate())
        return self.made[-1]


def read_back(lab, board, tmp_path: Path) -> ec.EllipticCurvePrivateKey:
    """The device's private key, read from the device as a user would (pyocd savemem, esptool read-flash)."""
    layout = LAYOUTS[board.flash_layout]
    part, out = layout.part("identity"), tmp_path / f"{board.id}.bin"
    if board.facts.flasher is Flasher.ROM_LOADER:
        cmd = [BIN / "esptool", "--port", board.console, "read-flash",
               hex(part.offset), hex(part.size), out]
    else:
        cmd = [BIN / "pyocd", "cmd", "-u", board.probe, "-t", board.probe_target,
               "-c", f"savemem {layout.geometry.base + part.offset:#x} {part.size} {out}"]
    done = subprocess.run(cmd, env=lab.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    if board.facts.family is Family.ESP32:  # the identity is an NVS entry there, a key area on an STM32
        der = esp32_nvs.read(out.read_bytes())["identity"]["device_key"]
        return serialization.load_der_private_key(der, password=None)
    scalar = keyarea.decode(out.read_bytes()).device_key
    return ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())


def forms(key: ec.EllipticCurvePrivateKey) -> dict[str, bytes]:
    """The private key as it could appear anywhere: raw scalar (both byte orders), hex, base64, DER, PEM."""
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    ders = {f"der-{name}": key.private_bytes(serialization.Encoding.DER, f, serialization.NoEncryption())
            for name, f in (("pkcs8", serialization.PrivateFormat.PKCS8),
                            ("sec1", serialization.PrivateFormat.TraditionalOpenSSL))}
    found = {"raw": raw, "raw-le": raw[::-1], "hex": raw.hex().encode(), "HEX": raw.hex().upper().encode(),
             "base64": base64.b64encode(raw), "base64url": base64.urlsafe_b64encode(raw).rstrip(b"=")}
    for name, der in ders.items():
        found |= {name: der, f"{name}-hex": der.hex().encode(), f"{name}-base64": base64.b64encode(der)}
    return found  # a PEM file holds the DER's base64 over several lines: the search joins them


def places(workdir: Path, lab, output: str) -> dict[str, bytes]:
    """Every file under the station's work folder and the lab's runtime folder, the database as an
    SQL dump, and the station's output."""
    found = {str(p): p.read_bytes() for root in (workdir, lab.root / "runtime") for p in root.rglob("*") if p.is_file()}
    with sqlite3.connect(workdir / "provisioning.db") as c:
        found["database dump"] = "\n".join(c.iterdump()).encode()
    found["station output"] = output.encode()
    return found


def leaks(workdir: Path, lab, output: str, keys: dict, dumps: Path) -> list[str]:
    """Where any of `keys` (board id -> key) appears; first proves the search finds each key where
    one is - in the device's own flash, read back into `dumps`."""
    for board, key in keys.items():
        assert any(needle in (dumps / f"{board}.bin").read_bytes() for needle in forms(key).values())
    found = []
    for where, data in places(workdir, lab, output).items():
        for text in (data, data.replace(b"\n", b"").replace(b"\r", b"")):  # PEM's base64 spans lines
            for board, key in keys.items():
                found += [f"{board}'s key ({form}) in {where}" for form, needle in forms(key).items() if needle in text]
    return found
