"""A device's private key goes into the device and nowhere else: not the database, not the log, not
any file the station wrote, not its output.

The units are provisioned with the STM32 lock off (rdp=0, so the probe can still read the key area)
and the ESP32 as always (its NVS partition is not encrypted), each device's private key is read back
from the device with the real tools - pyocd for the STM32 key area (docs/provisioning.md), esptool
for the ESP32's NVS identity partition - and every place the station wrote is searched for it in
raw, hex, base64, DER and PEM forms.
"""

import base64
import sqlite3
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rig.image.layouts import LAYOUTS
from rig.lab import load_rack
from rig.provision import keyarea
from tests.provision import esp32_nvs
from tests.provision.station_lab import OPEN, station_lab  # noqa: F401

BIN = Path(sys.executable).parent


def read_back(lab, board, tmp_path: Path) -> ec.EllipticCurvePrivateKey:
    """The device's private key, read from the device as a user would (pyocd savemem, esptool read-flash)."""
    layout = LAYOUTS[board.flash_layout]
    part, out = layout.part("identity"), tmp_path / f"{board.id}.bin"
    if board.variant == "esp32":
        cmd = [BIN / "esptool", "--port", board.console, "read-flash",
               hex(part.offset), hex(part.size), out]
    else:
        cmd = [BIN / "pyocd", "cmd", "-u", board.probe, "-t", board.probe_target,
               "-c", f"savemem {layout.geometry.base + part.offset:#x} {part.size} {out}"]
    done = subprocess.run(cmd, env=lab.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    if board.variant == "esp32":
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


def test_no_private_key_byte_outside_the_device(station_lab, tmp_path):  # noqa: F811
    workdir = tmp_path / "station"
    done = station_lab.provision(workdir, *OPEN)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (workdir / "station.log").stat().st_size > 0
    rack = load_rack(station_lab.rack)
    keys = {b.id: read_back(station_lab, b, tmp_path) for b in rack.boards}
    rows = sqlite3.connect(workdir / "provisioning.db").execute("SELECT key_fingerprint FROM attempts").fetchall()
    from rig.provision.identity import fingerprint

    assert sorted(fingerprint(k.public_key()) for k in keys.values()) == sorted(r[0] for r in rows)
    for board, key in keys.items():  # the search finds a key where there is one: in the device's own flash
        assert any(needle in (tmp_path / f"{board}.bin").read_bytes() for needle in forms(key).values())
    leaks = []
    for where, data in places(workdir, station_lab, done.stdout + done.stderr).items():
        for text in (data, data.replace(b"\n", b"").replace(b"\r", b"")):
            for board, key in keys.items():
                leaks += [f"{board}'s key ({form}) in {where}" for form, needle in forms(key).items() if needle in text]
    assert not leaks, leaks
