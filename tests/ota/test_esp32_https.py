"""The virtual ESP32's OTA client over HTTPS, against rig's real OTA server, one board in-process.

The CA the board trusts is the one built into its running app (rig.image.esp_app.embedded_ca), as
esp_https_ota gets `cert_pem` from the app's .rodata: the test gives the board firmware, never a
CA directly. Verdicts come from the console, the flash file and the server's counts.
"""

import pytest

from rig.ota import releases
from rig.ota.faults import Fault
from rig.ota.server import OtaServer
from rig.ota.tls import OTHER_HOST, campaign_certs
from tests.ota.test_esp32_client import Esp32, publish


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return campaign_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def esp32(tmp_path, certs):
    board = Esp32(tmp_path / "esp32", ca=certs.ca.read_bytes())
    yield board
    board.board.close()


def https_server(tmp_path, certs, cert: str) -> OtaServer:
    root = tmp_path / f"www-{cert}"
    root.mkdir()
    return OtaServer(root, tls=certs.context(cert))


def test_an_update_over_https_is_checked_against_the_ca_in_the_app(esp32, certs, tmp_path):
    new = releases.esp32_image("1.1.0", ca=certs.ca.read_bytes())
    with https_server(tmp_path, certs, "trusted") as server:
        url = publish(server, "app.bin", new)
        assert url.startswith("https://")
        mark = esp32.command(f"ota {url}")
        seen = esp32.wait_for("rig: confirmed", since=mark)
        assert "via=https" in seen and "rig: ota done slot=1 version=1.1.0" in seen
        assert esp32.read("ota_1", len(new)) == new
        assert server.device("esp32-ota").bytes_served == len(new)


def test_a_dropped_https_link_and_a_power_cut_resume_with_new_handshakes(esp32, certs, tmp_path):
    new = releases.esp32_image("1.3.0", ca=certs.ca.read_bytes())
    with https_server(tmp_path, certs, "trusted") as server:
        url = publish(server, "app.bin", new)
        server.faults["esp32-ota"] = [Fault("drop", at_percent=30, request=1)]
        esp32.board.arm_cut(after_ops=40, off_time=0.05)  # past the drop: a few sectors written
        mark = esp32.command(f"ota {url}")
        esp32.wait_for("rig: confirmed", since=mark)  # power came back: the old image again
        assert "rig: ota link lost" in esp32.text()[mark:]
        assert esp32.boots_slot() == 0
        mark = esp32.command(f"ota {url}")
        seen = esp32.wait_for("rig: ota done", since=mark)
        resumed = int(seen.split("resume=")[1].split()[0])
        assert resumed > 0 and "via=https" in seen
        esp32.wait_for("rig: confirmed", since=mark + len(seen))
        assert esp32.read("ota_1", len(new)) == new
        assert server.device("esp32-ota").ranges[-1] == ("app.bin", resumed, len(new) - 1)


@pytest.mark.parametrize("cert,why", [
    ("wrong-ca", "is not correctly signed by the trusted CA"),
    ("expired", "validity has expired"),
    ("wrong-host", "Common Name (CN) does not match with the expected CN"),
])
def test_a_server_certificate_the_app_cannot_trust_is_refused_before_any_byte(esp32, certs, tmp_path, cert, why):
    before = esp32.read("otadata")
    with https_server(tmp_path, certs, cert) as server:
        mark = esp32.command(f"ota {publish(server, 'app.bin', releases.esp32_image('1.4.0'))}")
        seen = esp32.wait_for("rig: ota refused", since=mark)
        assert f"rig: ota refused: TLS handshake failed: The certificate {why}" in seen
        assert "rig: boot" not in seen and "link lost" not in seen  # no retries: it is no broken link
        assert esp32.read("otadata") == before
        assert server.device("esp32-ota").bytes_served == 0


def test_the_wrong_host_certificate_names_another_host(certs):
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(certs.servers["wrong-host"][0].read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [OTHER_HOST]


def test_an_app_without_a_ca_refuses_https_and_still_fetches_http(tmp_path, certs):
    board = Esp32(tmp_path / "esp32")
    try:
        with https_server(tmp_path, certs, "trusted") as server:
            mark = board.command(f"ota {publish(server, 'app.bin', releases.esp32_image('1.2.0'))}")
            seen = board.wait_for("rig: ota refused", since=mark)
            assert "no CA certificate in this firmware" in seen
        root = tmp_path / "plain"
        root.mkdir()
        with OtaServer(root) as plain:
            new = releases.esp32_image("1.2.0")
            mark = board.command(f"ota {publish(plain, 'app.bin', new)}")
            assert "via=http\r\n" in board.wait_for("rig: confirmed", since=mark)
            assert board.read("ota_1", len(new)) == new
    finally:
        board.board.close()
