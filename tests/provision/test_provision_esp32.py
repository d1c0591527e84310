"""The ESP32 recipe on a private virtual lab, judged only through esptool/espefuse and the console.

The fresh unit is provisioned once per module (a module-scoped fixture); the tests after it only
look at it, except one that runs it down the line again (refused, then re-provisioned with force)
as one story, so no test depends on another having run in the same worker first.
"""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from rig.drivers import open_board
from rig.image import esp_app, otadata, sbv2
from rig.image import nvs as esp32_nvs
from rig.image.keys import ECDSA_P256, RSA_3072, PemSigner, PublicKey
from rig.image.layouts import LAYOUTS
from rig.ota.releases import esp32_image
from rig.provision import esp32, recipe
from rig.provision.identity import KeyMaker, fingerprint, make_ca
from rig.provision.records import Records, UnitRecord, now
from rig.provision.station import Firmware, Station
from tests import keys
from tests.provision.key_search import RememberingKeyMaker, forms

LAYOUT = LAYOUTS["esp32-4mb-ota"]
SECURE_VERSION = 1  # the factory app's anti-rollback version, so the lock burns a floor too
TOOLS = Path(sys.executable).parent


def pem_signer(path: Path, rsa_3072: bool = False) -> PemSigner:
    """Test key `path.stem` (tests/keys.py) in a PEM file: EC P-256 (the CA), or RSA-3072 as the ESP32's
    Secure Boot V2 needs."""
    path.write_bytes(keys.pem(path.stem, RSA_3072 if rsa_3072 else ECDSA_P256))
    return PemSigner(path)


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    """station(**changes) -> a Station with this module's records, CA, firmware key and firmware."""
    folder = tmp_path_factory.mktemp("station")
    ca_signer = pem_signer(folder / "ca.pem")
    fw_signer = pem_signer(folder / "fw.pem", rsa_3072=True)
    firmware = Firmware(image=sbv2.sign(esp32_image("1.0.0", secure_version=SECURE_VERSION), fw_signer),
                        bootloader=esp_app.bootloader_image())
    # These units are provisioned without flash encryption, so the tests can read their identity
    # back with esptool; the encrypted unit (the default) is esp32-crypt, at the end of the module.
    base = dict(name="station-t", operator="tester", records=Records(f"sqlite:///{folder / 'records.db'}"),
                ca_cert=make_ca(ca_signer), ca_signer=ca_signer, keys=KeyMaker(), firmware_signers={"esp32": fw_signer},
                firmware={"esp32": firmware}, options={"esp32": {"flash_encryption": False}})

    def make(**changes) -> Station:
        return Station(**{**base, **changes})

    return make


@pytest.fixture
def esp32_board(esp32_lab):
    """esp32_board(name) -> the bound drivers of esp32-<name>; connections closed after the test."""
    opened = []

    def get(name):
        opened.append(open_board(esp32_lab.board(f"esp32-{name}")))
        return opened[-1]

    yield get
    for drivers in opened:
        drivers.close()


def provision(drivers, station: Station) -> UnitRecord:
    """One unit through the recipe and into the records, as the station does it."""
    rec = UnitRecord(chip_id="", variant="esp32", outcome="", operator=station.operator, station=station.name,
                     started_at=now(), finished_at="")
    unit = recipe.Unit(drivers.board, drivers, station, rec)
    recipe.run(esp32.RECIPES["esp32"], unit)
    station.records.save(rec)
    return rec


def measured(rec: UnitRecord, step: str) -> dict:
    return next(s["measurements"] for s in rec.steps if s["name"] == step)


def console_tool(tool: str, drivers, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """esptool/espefuse on the board's console URL (the drivers' connection closed first: one client)."""
    drivers.close()
    # A full 4 MiB read-flash over the virtual UART took 120 s on 2 cores at load 20.
    done = subprocess.run([str(TOOLS / tool), "--port", drivers.console.url, *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 or not check, done.stdout[-2000:] + done.stderr[-2000:]
    return done


# -- a fresh unit, down the line
@pytest.fixture(scope="module")
def provisioned(esp32_lab, station):
    drivers = open_board(esp32_lab.board("esp32-fresh"))
    try:
        return provision(drivers, station()), station()
    finally:
        drivers.close()


def test_a_fresh_unit_is_provisioned_with_its_identity_in_nvs(provisioned, esp32_board):
    rec, st = provisioned
    assert rec.outcome == "provisioned", rec.reason
    assert [s["name"] for s in rec.steps] == ["identify", "check", "flash", "identity", "write_identity", "lock",
                                             "prove_lock"]
    assert rec.serial == f"RIG-E32-{rec.chip_id.upper()}"
    assert rec.firmware_sha256 == hashlib.sha256(st.firmware["esp32"].image).hexdigest()
    assert rec.bootloader_sha256 == hashlib.sha256(st.firmware["esp32"].bootloader).hexdigest()

    part = LAYOUT.part("identity")
    raw = esp32_board("fresh").read_flash(part.offset, part.size)
    assert hashlib.sha256(raw).hexdigest() == measured(rec, "write_identity")["identity_sha256"]
    nvs = esp32_nvs.read(raw)["identity"]
    assert set(nvs) == {"serial", "device_key", "device_cert", "ca_cert", "fw_pubkey"}
    assert nvs["serial"] == rec.serial
    cert = x509.load_der_x509_certificate(nvs["device_cert"])
    assert cert.public_bytes(serialization.Encoding.PEM).decode() == rec.certificate
    cert.verify_directly_issued_by(x509.load_der_x509_certificate(nvs["ca_cert"]))
    assert nvs["ca_cert"] == st.ca_cert.public_bytes(serialization.Encoding.DER)
    key = serialization.load_der_private_key(nvs["device_key"], None)
    assert fingerprint(key.public_key()) == fingerprint(cert.public_key()) == rec.key_fingerprint
    fw_key = PublicKey.of(serialization.load_der_public_key(nvs["fw_pubkey"]), "fw_pubkey")
    assert sbv2.key_digest(fw_key) == sbv2.key_digest(st.firmware_signers["esp32"].public)

    # The device's key is in the device only: not in the records database.
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    db = Path(st.records.engine.url.database).read_bytes()
    assert scalar not in db and nvs["device_key"] not in db and scalar.hex().encode() not in db


def test_the_factory_app_is_rsa_3072_signed_as_espsecure_checks_it(provisioned, esp32_board, tmp_path):
    """The ESP32 verifies RSA-3072 Secure Boot V2 blocks only: the app read back from ota_0 verifies
    with espsecure and the station's key, and the burnt digest is espsecure's digest of that key."""
    _, st = provisioned
    signed = st.firmware["esp32"].image
    part = LAYOUT.part("ota_0")
    (tmp_path / "ota_0.bin").write_bytes(esp32_board("fresh").read_flash(part.offset, len(signed)))
    pem = tmp_path / "fw-public.pem"
    pem.write_bytes(st.firmware_signers["esp32"].public.key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    done = subprocess.run([str(TOOLS / "espsecure"), "verify-signature", "--version", "2", "--keyfile", str(pem),
                           str(tmp_path / "ota_0.bin")], capture_output=True, text=True)
    assert done.returncode == 0 and "verification successful using the supplied key (RSA)" in done.stdout, done.stdout
    done = subprocess.run([str(TOOLS / "espsecure"), "digest-sbv2-public-key", "--keyfile", str(pem), "--output",
                           str(tmp_path / "digest.bin")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    efuses = esp32_board("fresh").powered_flasher().read_efuses()
    assert efuses["BLOCK2"].replace(" ", "") == (tmp_path / "digest.bin").read_bytes().hex()


def test_the_unit_reads_back_locked_through_espefuse(provisioned, esp32_board):
    rec, st = provisioned
    efuses = esp32_board("fresh").powered_flasher().read_efuses()
    assert efuses["MAC"].startswith(bytes.fromhex(rec.chip_id).hex(":") + " ")  # the chip id is the factory MAC
    assert efuses["BLOCK2"].replace(" ", "") == sbv2.key_digest(st.firmware_signers["esp32"].public).hex()
    assert efuses["ABS_DONE_1"] is True and efuses["JTAG_DISABLE"] is True
    assert efuses["UART_DOWNLOAD_DIS"] is False  # the default: the unit stays re-provisionable over serial
    assert bin(efuses["SECURE_VERSION"]).count("1") == SECURE_VERSION
    assert rec.lock_state["BLOCK2_WRITE_PROTECTED"] is True
    for name in ("ABS_DONE_1", "JTAG_DISABLE", "SECURE_VERSION", "UART_DOWNLOAD_DIS"):
        assert rec.lock_state[name] == efuses[name]  # the record holds what the chip reads
    proof = measured(rec, "prove_lock")
    assert proof["signature_verified"] and proof["booted_version"] == "1.0.0+0"


def boot_from_ota_1(drivers, app: bytes) -> str:
    """Write `app` to ota_1 and point otadata at it (as esp_ota_set_boot_partition); the console
    from esptool's reset to the app's boot line."""
    esptool = drivers.powered_flasher()
    state, index = esptool.read_otadata().boot_next(1, 2, rollback=False)
    at = LAYOUT.part("otadata").offset + index * otadata.SECTOR
    drivers.write_regions([(LAYOUT.part("ota_1").offset, app), (at, state.sector(index))])
    console = drivers.console
    mark = console.mark()  # esptool's hard reset after the write: what follows is that boot
    console.expect_line(r"rig: boot ", timeout=10)
    return console.text_since(mark)


def test_the_locked_unit_boots_only_images_signed_with_the_firmware_key(provisioned, esp32_board, tmp_path):
    rec, st = provisioned
    assert rec.outcome == "provisioned"
    drivers = esp32_board("fresh")
    app = esp32_image("2.0.0", secure_version=SECURE_VERSION)
    log = boot_from_ota_1(drivers, sbv2.sign(app, pem_signer(tmp_path / "other.pem", rsa_3072=True)))
    assert "secure_boot_v2: Secure Boot V2 verification failed." in log
    assert "esp_image: Secure boot signature verification failed" in log
    assert "boot: OTA app partition slot 1 is not bootable" in log
    assert "rig: boot variant=esp32 version=1.0.0+0 slot=0" in log  # the factory app keeps running

    # The same app signed with the firmware key boots: it was the signature that was refused.
    log = boot_from_ota_1(drivers, sbv2.sign(app, st.firmware_signers["esp32"]))
    assert "secure_boot_v2: Signature verified successfully!" in log
    assert "rig: boot variant=esp32 version=2.0.0+0 slot=1" in log


def test_a_second_run_refuses_the_unit_and_force_reprovisions_it_keeping_the_history(provisioned, esp32_board,
                                                                                      station):
    # One test, not two: the history it checks is the story of both runs, and xdist may hand two tests
    # of this module to two workers, each with its own module-scoped lab and records.
    rec, st = provisioned
    again = provision(esp32_board("fresh"), st)
    assert again.outcome == "refused"
    assert again.reason.startswith(f"already provisioned as {rec.serial} on ")
    assert [s["name"] for s in again.steps] == ["identify", "check"]

    drivers = esp32_board("fresh")
    forced = provision(drivers, station(force=True))
    assert forced.outcome == "provisioned", forced.reason
    assert forced.forced and forced.serial == rec.serial and forced.key_fingerprint != rec.key_fingerprint
    assert measured(forced, "lock")["burnt"] == []  # everything already burnt: the lock is a no-op
    assert measured(forced, "prove_lock")["booted_version"] == "1.0.0+0"  # erased and reflashed
    part = LAYOUT.part("identity")
    cert = x509.load_der_x509_certificate(esp32_nvs.read(drivers.read_flash(part.offset, part.size))
                                          ["identity"]["device_cert"])
    assert fingerprint(cert.public_key()) == forced.key_fingerprint
    outcomes = [(h["outcome"], h["forced"]) for h in station().records.history(rec.chip_id)]
    assert outcomes == [("provisioned", False), ("refused", False), ("provisioned", True)]


# -- units that come to the fixture in another state
def test_a_unit_with_garbage_in_flash_and_a_lock_cut_halfway_provisions(esp32_board, station, tmp_path):
    """Flash full of noise where the bootloader, table, otadata, app and identity go, and the
    firmware key's digest already burnt but not yet write-protected (a station that died mid-lock)."""
    drivers = esp32_board("garbage")
    noise = hashlib.shake_256(b"garbage").digest(0x8000)
    drivers.write_regions([(offset, noise) for offset in (0x0, 0x8000, 0x10000, LAYOUT.part("identity").offset)],
                          verify=False)
    pem = tmp_path / "fw-public.pem"
    st = station()
    pem.write_bytes(st.firmware_signers["esp32"].public.key.public_bytes(serialization.Encoding.PEM,
                                                               serialization.PublicFormat.SubjectPublicKeyInfo))
    console_tool("espefuse", drivers, "--do-not-confirm", "burn-key-digest", "--no-protect-key", str(pem))

    rec = provision(esp32_board("garbage"), st)
    assert rec.outcome == "provisioned", rec.reason
    assert not measured(rec, "identify")["secure_boot"] and measured(rec, "identify")["key_digest_burnt"]
    # The steps share one ROM-loader session, so the app never booted before the lock (its
    # bootloader would have burnt SECURE_VERSION): the lock burns the floor itself.
    assert measured(rec, "lock")["burnt"] == ["WR_DIS", "ABS_DONE_1", "SECURE_VERSION", "JTAG_DISABLE"]
    assert rec.lock_state["BLOCK2_WRITE_PROTECTED"] is True
    assert measured(rec, "prove_lock")["booted_version"] == "1.0.0+0"


def test_a_unit_locked_to_another_key_fails_before_anything_is_written(esp32_board, station, tmp_path):
    drivers = esp32_board("conflict")
    other = pem_signer(tmp_path / "other.pem", rsa_3072=True)
    pem = tmp_path / "other-public.pem"
    pem.write_bytes(other.public.key.public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    console_tool("espefuse", drivers, "--do-not-confirm", "burn-key-digest", str(pem))

    drivers = esp32_board("conflict")
    rec = provision(drivers, station())
    assert rec.outcome == "failed"
    assert rec.reason.startswith("identify: eFuse BLOCK2 holds another key's Secure Boot digest")
    assert "\n" not in rec.reason
    assert [s["name"] for s in rec.steps] == ["identify"]
    assert drivers.read_flash(0x1000, 0x1000) == b"\xff" * 0x1000  # nothing flashed (the virtual chip came erased)


@pytest.mark.nightly  # ~25 s: esptool's connection attempts to a silent ROM time out, twice
def test_disable_download_locks_out_esptool_for_good(esp32_board, station):
    st = station(options={"esp32": {"disable_download": True}})
    rec = provision(esp32_board("nodl"), st)
    assert rec.outcome == "provisioned", rec.reason
    assert rec.lock_state["UART_DOWNLOAD_DIS"] is True
    assert measured(rec, "lock")["burnt"][-1] == "UART_DOWNLOAD_DIS"
    assert measured(rec, "prove_lock")["download_refused"] is True

    refused = console_tool("esptool", esp32_board("nodl"), "--connect-attempts", "1", "chip-id", check=False)
    assert refused.returncode != 0
    again = provision(esp32_board("nodl"), station(force=True))
    assert again.outcome == "failed"
    assert again.reason == f"identify: {esp32.DOWNLOAD_DISABLED}"


def test_unknown_recipe_options_fail_the_unit_in_one_line(esp32_board, station):
    rec = provision(esp32_board("conflict"), station(options={"esp32": {"disable_jtg": True}}))
    assert rec.outcome == "failed"
    assert rec.reason == "identify: esp32 recipe options: disable_jtg unknown; known: disable_jtag, " \
                         "disable_download, secure_version, flash_encryption"


# -- the default: flash encryption (release mode) and NVS encryption
@pytest.fixture(scope="module")
def encrypted_unit(esp32_lab, station):
    keys = RememberingKeyMaker()
    st = station(keys=keys, options={})  # the recipe's defaults
    drivers = open_board(esp32_lab.board("esp32-crypt"))
    try:
        return provision(drivers, st), st, keys
    finally:
        drivers.close()


def test_an_encrypted_unit_holds_no_form_of_its_key_in_a_full_flash_dump(encrypted_unit, esp32_board, tmp_path):
    rec, _, keys = encrypted_unit
    assert rec.outcome == "provisioned", rec.reason
    assert measured(rec, "prove_lock")["booted_version"] == "1.0.0+0"  # it boots through the decryption
    dump = tmp_path / "flash.bin"
    console_tool("esptool", esp32_board("crypt"), "read-flash", "0", hex(LAYOUT.geometry.size), str(dump))
    data = dump.read_bytes()
    assert len(data) == LAYOUT.geometry.size and len(keys.made) == 1
    found = [form for form, needle in forms(keys.made[0]).items() if needle in data]
    assert found == [], f"the device key is readable from flash as {found}"
    # The search does find the key where it is plaintext: the same identity without NVS encryption.
    der = keys.made[0].private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    plain = esp32.nvs_identity([("device_key", der)], LAYOUT.part("identity").size)
    assert any(needle in plain for needle in forms(keys.made[0]).values())
    # What esptool reads of the app and the table is ciphertext; the factory app is not in the dump.
    app = encrypted_unit[1].firmware["esp32"].image
    assert app[:4096] not in data and app[-4096:] not in data and data[0x8000:0x8002] != b"\xaa\x50"


def test_an_encrypted_unit_reads_back_in_release_mode(encrypted_unit, esp32_board):
    rec, _, _ = encrypted_unit
    efuses = esp32_board("crypt").powered_flasher().read_efuses()
    assert bin(efuses["FLASH_CRYPT_CNT"]).count("1") % 2 == 1 and efuses["FLASH_CRYPT_CONFIG"] == 0xF
    assert efuses["DISABLE_DL_ENCRYPT"] and efuses["DISABLE_DL_DECRYPT"] and efuses["DISABLE_DL_CACHE"]
    assert set(efuses["BLOCK1"].replace(" ", "")) == {"0"}  # the key is read-protected
    assert rec.lock_state["BLOCK1_READ_PROTECTED"] and rec.lock_state["FLASH_CRYPT_CNT_WRITE_PROTECTED"]
    assert "BLOCK1" in measured(rec, "lock")["burnt"]


def test_an_encrypted_unit_cannot_be_provisioned_again(encrypted_unit, esp32_board, station):
    rec, _, _ = encrypted_unit
    again = provision(esp32_board("crypt"), station(force=True, options={}))
    assert again.outcome == "failed" and [s["name"] for s in again.steps] == ["identify"]
    assert "flash encryption key burnt already" in again.reason and "\n" not in again.reason
