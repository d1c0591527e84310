"""OTA campaigns on a provisioned ESP32 - Secure Boot V2 with the station's RSA-3072 key, flash
encryption in release mode - as `rig ota --firmware-key` runs them: the campaign signs its releases
with the station's key, installs its baseline over the air (an encrypted board takes no plaintext
over the ROM loader), and reads back what a bench can read of such a board (otadata; the slots are
ciphertext). A key the board does not trust stops the campaign before it starts, in one line.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rig.drivers import open_board
from rig.image import esp_app, sbv2
from rig.image.keys import load_signer
from rig.ota import scenarios
from rig.ota.kit import CampaignKit, firmware_key
from rig.ota.releases import esp32_image
from rig.provision import esp32, recipe
from rig.provision.identity import KeyMaker, make_ca
from rig.provision.records import Records, UnitRecord, now
from rig.provision.station import Firmware, Station
from tests.provision.conftest import esp32_lab_up
from tests.provision.test_provision_esp32 import pem_signer

BOARD = "esp32-crypt"
RIG = str(Path(sys.executable).parent / "rig")
HSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"  # Debian softhsm2 (.ci/setup installs it)
HSM_TOOL = str(Path(__file__).resolve().parents[1] / "image" / "hsm_tool.py")


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory):
    """(lab folder, rack, the station's firmware key file, the unit's record): one unit provisioned
    with the recipe's defaults and a factory app that embeds no update CA, as `rig provision run`
    makes it."""
    root = tmp_path_factory.mktemp("provisioned-esp32")
    fw_key = root / "fw.pem"
    fw, ca = pem_signer(fw_key, rsa_3072=True), pem_signer(root / "ca.pem")
    station = Station(name="station-ota", operator="tester", records=Records(f"sqlite:///{root / 'records.db'}"),
                      ca_cert=make_ca(ca), ca_signer=ca, keys=KeyMaker(), firmware_signers={"esp32": fw},
                      firmware={"esp32": Firmware(image=sbv2.sign(esp32_image("1.0.0"), fw),
                                                  bootloader=esp_app.bootloader_image())})
    with esp32_lab_up(root / "lab") as rack:
        drivers = open_board(rack.board(BOARD))
        try:
            rec = UnitRecord(chip_id="", variant="esp32", outcome="", operator="tester", station="station-ota",
                             started_at=now(), finished_at="")
            recipe.run(esp32.RECIPES["esp32"], recipe.Unit(drivers.board, drivers, station, rec))
            assert rec.outcome == "provisioned", rec.reason
            assert rec.lock_state["FLASH_ENCRYPTED"] and rec.lock_state["ABS_DONE_1"]
        finally:
            drivers.close()
        yield root / "lab", rack, fw_key, rec


# The default run takes one; tests/provision/test_esp32_ota_encrypted.py covers a power cut and a
# refusal on such a unit at the console already.
@pytest.mark.parametrize("name", ["full image", *(pytest.param(n, marks=pytest.mark.nightly) for n in (
    "power cut at 50% of the download", "power cut during the flash write", "corrupt image"))])
def test_a_campaign_signed_with_the_station_key_runs_on_the_provisioned_board(provisioned, name, monkeypatch):
    lab, rack, fw_key, rec = provisioned
    monkeypatch.setenv("RIG_RUNTIME_DIR", str(lab / "runtime"))  # where the lab announced its relay
    drivers = open_board(rack.board(BOARD))
    try:
        with CampaignKit(lab / "esp32-lab.yaml", lab / "work", firmware_signer=firmware_key(str(fw_key))) as kit:
            verdict = kit.campaign(drivers).run(scenarios.by_name(name))
        # The unit still says who it is, as its station made it (the app reads its encrypted NVS).
        console = drivers.console
        drivers.power_cycle()  # drains the console while off: the identity line read next is the new boot's
        identity = console.expect_line(r"rig: identity (?P<fields>[^\r\n]*)", timeout=30).group("fields")
    finally:
        drivers.close()
    assert verdict.ok, verdict.summary()
    assert "flash-encrypted" in verdict.read_back
    cert = x509.load_pem_x509_certificate(rec.certificate.encode()).public_bytes(serialization.Encoding.DER)
    assert identity == f"serial={rec.serial} cert_sha256={hashlib.sha256(cert).hexdigest()}"


def test_a_key_the_board_does_not_trust_stops_rig_ota_in_one_line(provisioned, rig_cli, monkeypatch, tmp_path):
    lab, _, _, _ = provisioned
    monkeypatch.setenv("RIG_RUNTIME_DIR", str(lab / "runtime"))
    other = tmp_path / "other.pem"
    pem_signer(other, rsa_3072=True)
    done = rig_cli("ota", "--rack", lab / "esp32-lab.yaml", "--board", BOARD, "--work", tmp_path / "work",
                   "--firmware-key", other)
    assert done.returncode != 0
    assert f"{BOARD} trusts the Secure Boot V2 key with digest" in done.stderr
    assert f"not --firmware-key {other}" in done.stderr and "would refuse every release" in done.stderr
    # An EC key is no Secure Boot V2 key for this chip: refused before any board is touched.
    ec_key = tmp_path / "ec.pem"
    ec_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(Exception, match="verifies RSA-3072 signatures only"):
        firmware_key(str(ec_key))
    assert load_signer(str(ec_key)).public.kind == "ecdsa-p256"


# Nightly: a second unit through the station's CLI and a campaign's CLI, about two minutes.
@pytest.mark.nightly
def test_station_and_campaign_sign_with_one_rsa_3072_key_on_a_softhsm_token(provisioned, tmp_path):
    """The user's path end to end: `rig provision run --firmware-key pkcs11:...` with the RSA-3072
    key of a SoftHSM2 token (the key never leaves it), then `rig ota --firmware-key` the same URI."""
    lab, _, _, _ = provisioned
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf), "RIG_PKCS11_PIN": "1234", "RIG_RUNTIME_DIR": str(lab / "runtime")}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "rig", "--pin", "1234", "--so-pin", "5678"],
                   env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, HSM_TOOL, HSM_MODULE, "genkeys"], env=env, check=True)  # fw-sb: RSA-3072
    key = f"pkcs11:token=rig;object=fw-sb?module-path={HSM_MODULE}&pin-source=env:RIG_PKCS11_PIN"
    rack = str(lab / "esp32-lab.yaml")

    def rig(*args):
        return subprocess.run([RIG, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)

    done = rig("provision", "run", "--rack", rack, "--board", "esp32-fresh", "--workdir", str(tmp_path / "station"),
               "--firmware-key", key)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    done = rig("ota", "--rack", rack, "--board", "esp32-fresh", "--work", str(tmp_path / "work"),
               "--firmware-key", key, "--scenario", "full image")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "esp32-fresh: full image -> updated" in done.stdout
