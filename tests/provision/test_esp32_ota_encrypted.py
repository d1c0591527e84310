"""OTA on a provisioned ESP32 - flash encryption in release mode, its identity in encrypted NVS,
Secure Boot V2 with the station's RSA-3072 key - judged as a real board is judged: its console
(boot line, the identity line the app prints from its NVS) and esptool's read-back.

One unit, provisioned once per module (per xdist worker), takes each test from whatever it runs:
an update over HTTPS with a release signed with the station's key (installed, identity kept, no
form of its key in what the update wrote), a release signed with another key (refused, kept), an
update with a power cut mid-download (resumes, installed, identity kept). A second lab's board
carries an OTA client that writes past the flash cache (defect `ota-plaintext-write`): the same
update must then not be installed.
"""

import hashlib
import re
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from rig.drivers import open_board
from rig.image import esp_app, otadata, sbv2
from rig.image.layouts import LAYOUTS
from rig.ota.links import profile
from rig.ota.releases import esp32_image
from rig.ota.server import OtaServer
from rig.ota.tls import campaign_certs
from rig.provision import esp32, recipe
from rig.provision.identity import make_ca
from rig.provision.records import Records, UnitRecord, now
from rig.provision.station import Firmware, Station
from rig.sim.broken import enable
from tests.provision.conftest import esp32_lab_up
from tests.provision.key_search import RememberingKeyMaker, forms
from tests.provision.test_provision_esp32 import pem_signer

LAYOUT = LAYOUTS["esp32-4mb-ota"]
IDENTITY = r"rig: identity (?P<fields>[^\r\n]*)"
BOOT = r"rig: boot (?P<fields>[^\r\n]*)"


class Line:
    """One provisioned unit, its station, the OTA server its firmware trusts."""

    def __init__(self, folder: Path, rack, board: str):
        self.folder = folder
        folder.mkdir(exist_ok=True)
        self.certs = campaign_certs(folder / "tls")
        self.ca = self.certs.ca.read_bytes()  # embedded in every app, as the factory's update server CA
        self.fw = pem_signer(folder / "fw.pem", rsa_3072=True)
        self.other = pem_signer(folder / "other.pem", rsa_3072=True)
        ca_signer = pem_signer(folder / "ca.pem")
        self.keys = RememberingKeyMaker()
        self.station = Station(
            name="station-ota", operator="tester", records=Records(f"sqlite:///{folder / 'records.db'}"),
            ca_cert=make_ca(ca_signer), ca_signer=ca_signer, keys=self.keys, firmware_signers={"esp32": self.fw},
            firmware={"esp32": Firmware(image=sbv2.sign(esp32_image("1.0.0", ca=self.ca), self.fw),
                                        bootloader=esp_app.bootloader_image())})  # the recipe's defaults
        self.drivers = open_board(rack.board(board))
        rec = UnitRecord(chip_id="", variant="esp32", outcome="", operator="tester", station="station-ota",
                         started_at=now(), finished_at="")
        recipe.run(esp32.RECIPES["esp32"], recipe.Unit(self.drivers.board, self.drivers, self.station, rec))
        self.record = rec
        (folder / "www").mkdir()
        self.server = OtaServer(folder / "www", tls=self.certs.context("trusted"), link=profile("ltem")).__enter__()

    def close(self) -> None:
        self.server.close()
        self.drivers.close()

    def release(self, version: str, signer) -> str:
        """The URL of an app release signed with `signer`."""
        name = f"{version}-{signer.public.keyhash.hex()[:8]}.bin"
        (self.folder / "www" / name).write_bytes(sbv2.sign(esp32_image(version, ca=self.ca), signer))
        return self.server.url(name, device=self.drivers.board.id)

    def power_cycle(self) -> str:
        """The console from a power cycle to the app's health verdict."""
        console = self.drivers.console
        self.drivers.target.activate(console)
        console.drain()  # what the board said before is not an answer to what comes next
        mark = console.mark()
        self.drivers.power_cycle()
        console.expect_line(r"rig: health ", timeout=20)
        return console.text_since(mark)

    def ota(self, url: str, until: str, timeout: float = 60) -> str:
        console = self.drivers.console
        self.drivers.target.activate(console)
        console.drain()  # what the board said before is not an answer to what comes next
        mark = console.mark()
        console.send_line(f"ota {url}")
        console.expect_line(until, timeout=timeout)
        return console.text_since(mark)

    def expected_identity(self) -> dict[str, str]:
        cert = x509.load_pem_x509_certificate(self.record.certificate.encode())
        return {"serial": self.record.serial,
                "cert_sha256": hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()}


def fields(pattern: str, text: str) -> dict[str, str]:
    """The key=value pairs of the last line matching `pattern` in `text`."""
    found = re.findall(pattern, text, re.M)
    assert found, f"no line {pattern!r} on the console:\n{text[-3000:]}"
    return dict(pair.split("=", 1) for pair in found[-1].split() if "=" in pair)


@pytest.fixture(scope="module")
def line(esp32_lab, tmp_path_factory):
    unit = Line(tmp_path_factory.mktemp("ota-line"), esp32_lab, "esp32-crypt")
    yield unit
    unit.close()


def test_the_provisioned_unit_shows_its_identity_on_boot(line):
    assert line.record.outcome == "provisioned", line.record.reason
    assert line.record.lock_state["FLASH_ENCRYPTED"] and line.record.lock_state["ABS_DONE_1"]
    text = line.power_cycle()
    assert fields(BOOT, text)["variant"] == "esp32"
    assert fields(IDENTITY, text) == line.expected_identity()


def test_an_update_signed_with_the_station_key_installs_and_keeps_the_identity(line):
    text = line.ota(line.release("2.0.0", line.fw), r"rig: confirmed")
    done = fields(r"rig: ota done (?P<fields>[^\r\n;]*)", text)
    assert done["version"] == "2.0.0+0" and "via=https" in text
    assert "secure_boot_v2: Signature verified successfully!" in text
    boot = fields(BOOT, text)
    slot = int(done["slot"])
    assert (boot["version"], boot["slot"]) == ("2.0.0+0", str(slot))
    assert fields(IDENTITY, text) == line.expected_identity()
    # Read back as a bench would: otadata is plaintext and says ota_1 runs, confirmed; the slot the
    # client wrote holds ciphertext (esp_ota_write went through the flash encryption).
    drivers = line.drivers
    table = otadata.parse(drivers.read_flash(LAYOUT.part("otadata").offset, otadata.SIZE))
    assert table.active_slot(2) == slot and table.entries[table.active()].state == otadata.State.VALID
    image = sbv2.sign(esp32_image("2.0.0", ca=line.ca), line.fw)
    cells = drivers.read_flash(LAYOUT.part(f"ota_{slot}").offset, len(image))
    assert cells[:4096] != image[:4096] and image[4096:8192] not in cells
    # And the device key is still in no form in what the update wrote (progress records in nvs,
    # otadata, both slots) nor in the identity and its keys. The full 4 MiB dump right after
    # provisioning is test_provision_esp32's; over a loaded serial link it takes minutes.
    dump = b"".join(drivers.read_flash(p.offset, min(p.size, 2 * len(image))) for p in LAYOUT.partitions
                    if p.name in ("nvs", "otadata", "ota_0", "ota_1", "identity", "nvs_keys"))
    assert line.record.serial.encode() not in dump  # NVS encryption covers every entry, the serial too
    found = [form for form, needle in forms(line.keys.made[0]).items() if needle in dump]
    assert found == [], f"after the update the device key is readable from flash as {found}"


def test_an_update_signed_with_another_key_is_refused_and_the_unit_keeps_running(line):
    before = fields(BOOT, line.power_cycle())
    text = line.ota(line.release("4.0.0", line.other), r"rig: ota (refused|done)")
    assert "rig: ota refused: Secure Boot V2 signature not verified" in text
    text = line.power_cycle()
    assert fields(BOOT, text)["version"] == before["version"]
    assert fields(IDENTITY, text) == line.expected_identity()


def test_a_power_cut_mid_download_resumes_and_the_update_installs(line):
    url = line.release("3.0.0", line.fw)
    halfway = threading.Event()
    line.server.on_bytes(lambda device, name, end: end > 12 * 1024 and "3.0.0" in name and halfway.set())
    console = line.drivers.console
    line.drivers.target.activate(console)
    console.send_line(f"ota {url}")
    assert halfway.wait(30), "the download never got a third of the way"
    # The cut: the client was writing the new image into the other, encrypted slot.
    running = fields(BOOT, line.power_cycle())["slot"]
    text = line.ota(url, r"rig: confirmed")
    begin = fields(r"rig: ota begin (?P<fields>[^\r\n]*)", text)
    assert int(begin["resume"]) > 0, text
    boot = fields(BOOT, text)
    assert boot["version"] == "3.0.0+0" and boot["slot"] != running
    assert fields(IDENTITY, text) == line.expected_identity()


# Nightly: a lab and a provisioning of its own (30-40 s on 2 loaded cores) for the defect's proof.
@pytest.mark.nightly
def test_an_ota_client_writing_past_the_flash_encryption_does_not_install(tmp_path):
    """The defect switch the tests above must catch: the update lands as plaintext in an encrypted
    slot, which the chip reads back as noise."""
    with esp32_lab_up(tmp_path, enable("ota-plaintext-write").env) as rack:
        broken = Line(tmp_path / "line", rack, "esp32-fresh")
        try:
            assert broken.record.outcome == "provisioned", broken.record.reason
            text = broken.ota(broken.release("2.0.0", broken.fw), r"rig: ota (refused|done)")
            text += broken.power_cycle()
            assert "version=2.0.0" not in text and fields(BOOT, text)["version"] == "1.0.0+0"
        finally:
            broken.close()
