"""The STM32 recipe on a private virtual lab (H7 and L0): provisioned units hold their identity,
locked units refuse readout through pyocd, a second run refuses them, --force re-provisions.

Verdicts come from what a real fixture sees: the records database, flash read back through the
probe while the unit is open, `pyocd cmd` run as a user runs it, and the console's boot line.
"""

import hashlib
import re
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rig.errors import RigError
from rig.image import factory
from rig.image.layouts import LAYOUTS, STM32H7, STM32L0
from rig.provision import keyarea, stm32
from rig.provision.steps import serial_of
from tests.provision.stm32_lab import BOARDS, VERSION, Lab, make_station, provision

VARIANTS = tuple(BOARDS)
STEPS = ["identify", "check", "flash", "identity", "write_identity", "lock", "prove_lock"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("prov-stm32"))
    with lab.running(seen_here=True):
        yield lab


@pytest.fixture(scope="module")
def rack(lab):
    from rig.lab import load_rack

    return load_rack(lab.rack)


@pytest.fixture(scope="module")
def boards(rack):
    from rig.drivers import open_board

    opened = {variant: open_board(rack.board(board_id)) for variant, board_id in BOARDS.items()}
    yield opened
    for drivers in opened.values():
        drivers.close()


def station_for(tmp_path, rack, **options):
    folder = tmp_path / "station"
    folder.mkdir(exist_ok=True)
    return make_station(folder, rack, **options)


def boots_factory_image(drivers) -> None:
    """Cold boot, judged from the console's boot line."""
    fields = drivers.strategy.power_on_to_app()
    assert (fields["variant"], fields["version"], fields["slot"]) == (drivers.board.variant, f"{VERSION}+0", "0")


# -- the key area format, without a board


def _area(geometry):
    return keyarea.KeyArea(serial="RIG-H7-0123", device_key=bytes(range(32)), device_cert=b"cert" * 100,
                           ca_cert=b"ca" * 77, firmware_key=b"spki" * 23)


@pytest.mark.parametrize("geometry", [STM32H7, STM32L0], ids=["h7", "l0"])
def test_key_area_round_trips_and_fills_the_write_unit_with_the_erased_value(geometry):
    area = _area(geometry)
    data = keyarea.encode(area, geometry)
    assert len(data) % geometry.write_size == 0
    assert data[:8] == b"RIGKEYAR" and struct.unpack_from("<HH", data, 8) == (1, 5)
    (length,) = struct.unpack_from("<I", data, 12)
    end = 16 + length
    assert data[end : end + 32] == hashlib.sha256(data[:end]).digest()
    assert set(data[end + 32 :]) <= {geometry.erased}
    # Read back as a tool does: the whole partition, erased beyond the area.
    partition = data + bytes([geometry.erased]) * 4096
    assert keyarea.decode(partition) == area
    assert "device_key" not in repr(area)  # the key is never printed


@pytest.mark.parametrize("erased", [0xFF, 0x00])
def test_an_erased_or_damaged_partition_is_no_key_area(erased):
    with pytest.raises(RigError, match="no key area"):
        keyarea.decode(bytes([erased]) * 8192)
    data = bytearray(keyarea.encode(_area(STM32L0), STM32L0))
    data[40] ^= 1  # one bit flipped, as a torn or disturbed write leaves it
    with pytest.raises(RigError, match="SHA-256 does not match"):
        keyarea.decode(bytes(data))


def test_a_reader_skips_tags_it_does_not_know():
    # An area built by hand from docs/provisioning.md, with a tag 0x40 before the known ones.
    records = struct.pack("<HH", 0x40, 3) + b"new\0"
    for tag, value in ((1, b"RIG-L0-1"), (2, bytes(32)), (3, b"c"), (4, b"a"), (5, b"k")):
        records += struct.pack("<HH", tag, len(value)) + value + bytes(-len(value) % 4)
    body = b"RIGKEYAR" + struct.pack("<HHI", 1, 6, len(records)) + records
    area = keyarea.decode(body + hashlib.sha256(body).digest())
    assert (area.serial, area.device_cert, area.firmware_key) == ("RIG-L0-1", b"c", b"k")


# -- the recipe on the virtual boards


@pytest.mark.parametrize("variant", VARIANTS)
def test_open_unit_holds_its_identity_and_boots(tmp_path, rack, boards, variant):
    """rdp=0 leaves the unit readable, so the key area can be read back and checked."""
    station = station_for(tmp_path, rack, rdp=0)
    drivers = boards[variant]
    rec = provision(station, drivers)
    assert rec.outcome == "provisioned", rec.reason
    assert [s["name"] for s in rec.steps] == STEPS and all(s["ok"] for s in rec.steps)
    assert len(rec.chip_id) == 24 and rec.serial == serial_of(variant, rec.chip_id)
    firmware = station.firmware[variant]
    regions = {r.name: r.data for r in factory.stm32_regions(variant, firmware.image, firmware.bootloader)}
    assert rec.firmware_sha256 == hashlib.sha256(regions["slot0"]).hexdigest()
    assert rec.bootloader_sha256 == hashlib.sha256(firmware.bootloader).hexdigest()
    assert rec.lock_state == {"rdp": 0}
    identify = rec.steps[0]["measurements"]
    assert identify["unique_id"] == rec.chip_id
    assert identify["dev_id"] == {"stm32h7": "0x450", "stm32l0": "0x447"}[variant]

    # The key area, read back through the probe.
    layout = LAYOUTS[drivers.board.flash_layout]
    area = keyarea.decode(drivers.read_flash(layout.part("identity").offset, 4096))
    device_key = ec.derive_private_key(int.from_bytes(area.device_key, "big"), ec.SECP256R1())
    cert = x509.load_der_x509_certificate(area.device_cert)
    assert cert == x509.load_pem_x509_certificate(rec.certificate.encode())
    assert cert.public_key() == device_key.public_key()  # the certificate is for the key on the device
    cert.verify_directly_issued_by(station.ca_cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == rec.serial == area.serial
    assert x509.load_der_x509_certificate(area.ca_cert) == station.ca_cert
    assert area.firmware_key == station.firmware_signers[rec.variant].public.key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    # The private key went to the device only: not into the database, in any spelling.
    db = (tmp_path / "station" / "records.db").read_bytes()
    for spelling in (area.device_key, area.device_key.hex().encode(), area.device_key.hex().upper().encode()):
        assert spelling not in db
    boots_factory_image(drivers)


@pytest.mark.parametrize("variant", VARIANTS)
def test_locked_unit_refuses_readout_and_a_second_run_and_force_reprovisions_it(tmp_path, lab, rack, boards,
                                                                                variant):
    station = station_for(tmp_path, rack)  # default options: RDP level 1
    drivers = boards[variant]
    board = drivers.board
    first = provision(station, drivers)
    assert first.outcome == "provisioned", first.reason
    assert first.lock_state == {"rdp": 1}
    assert first.steps[-1]["measurements"]["readout_refused"] is True

    # A user's pyocd: flash reads refused - the image and the key area alike - while the unique ID
    # (system memory, not the flash array) still reads, and says the chip id the station recorded.
    layout = LAYOUTS[board.flash_layout]
    base = layout.geometry.base
    for partition in ("slot0", "identity"):
        out = lab.pyocd_cmd(board, f"read32 0x{base + layout.part(partition).offset:x} 16")
        assert "memory transfer failed" in out.stdout + out.stderr, out.stdout + out.stderr
    uid = stm32.PARTS[variant].chip.uid
    out = lab.pyocd_cmd(board, *(f"read32 0x{addr:x}" for addr in uid))
    words = re.findall(r"^[0-9a-f]{8}:\s+([0-9a-f]{8})", out.stdout, re.MULTILINE)
    assert "".join(reversed(words)) == first.chip_id, out.stdout + out.stderr
    boots_factory_image(drivers)  # the lock did not brick it

    second = provision(station, drivers)
    assert second.outcome == "refused" and "already provisioned" in second.reason
    assert [s["name"] for s in second.steps] == ["identify", "check"]  # nothing was written to it

    station.force = True
    third = provision(station, drivers)
    assert third.outcome == "provisioned", third.reason
    assert third.forced and third.serial == first.serial
    assert third.key_fingerprint != first.key_fingerprint  # a new identity, never the same one twice
    assert third.steps[2]["measurements"]["erase"].endswith("(was locked)")
    history = station.records.history(first.chip_id)
    assert [(h["outcome"], h["forced"]) for h in history] == [("provisioned", False), ("refused", False),
                                                               ("provisioned", True)]
    boots_factory_image(drivers)


def test_rdp_level_2_is_refused_before_the_unit_is_touched(tmp_path, rack, boards):
    station = station_for(tmp_path, rack, rdp=2)
    rec = provision(station, boards["stm32h7"])
    assert rec.outcome == "failed" and "rdp=2 refused" in rec.reason
    assert [s["name"] for s in rec.steps] == ["identify"] and rec.chip_id == ""  # stopped before the probe
