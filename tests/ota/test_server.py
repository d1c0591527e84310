"""The OTA server as an HTTP client sees it: ranges, resume, faults, TLS, byte counts."""

import http.client
import os
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

from rig.errors import RigError
from rig.ota.faults import Fault, parse
from rig.ota.links import profile
from rig.ota.server import OtaServer
from rig.ota.tls import make_local_ca, server_context

IMAGE = os.urandom(20_000)


@pytest.fixture
def artefacts(tmp_path):
    (tmp_path / "app.bin").write_bytes(IMAGE)
    (tmp_path / "other.bin").write_bytes(b"other" * 100)
    return tmp_path


@pytest.fixture
def server(artefacts):
    with OtaServer(artefacts) as s:
        yield s


def get(url, headers=None, context=None):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), context=context) as r:
        return r.status, dict(r.headers), r.read()


def test_full_download_is_counted_per_device(server):
    status, headers, body = get(server.url("app.bin", "dev-1"))
    assert (status, body) == (200, IMAGE)
    assert headers["Accept-Ranges"] == "bytes"
    assert server.wait_idle()
    assert server.stats["dev-1"].bytes_served == len(IMAGE)
    assert server.stats["dev-1"].requests == 1


def test_range_requests(server):
    status, headers, body = get(server.url("app.bin", "d"), {"Range": "bytes=100-199"})
    assert (status, body, headers["Content-Range"]) == (206, IMAGE[100:200], f"bytes 100-199/{len(IMAGE)}")
    assert get(server.url("app.bin", "d"), {"Range": "bytes=19990-"})[2] == IMAGE[19990:]
    assert get(server.url("app.bin", "d"), {"Range": "bytes=-10"})[2] == IMAGE[-10:]
    with pytest.raises(urllib.error.HTTPError) as exc:
        get(server.url("app.bin", "d"), {"Range": f"bytes={len(IMAGE)}-"})
    assert exc.value.code == 416


def test_drop_then_resume_rebuilds_the_image(server):
    server.faults["dev"] = [Fault("drop", at_percent=40, request=1)]
    host, port = server.address
    conn = http.client.HTTPConnection(host, port)
    conn.request("GET", "/app.bin?device=dev")
    response = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead) as exc:
        response.read()
    got = exc.value.partial
    assert got == IMAGE[: len(IMAGE) * 40 // 100]
    _, _, rest = get(server.url("app.bin", "dev"), {"Range": f"bytes={len(got)}-"})
    assert got + rest == IMAGE
    assert server.wait_idle()
    assert server.stats["dev"].faults_fired == [f"drop at {len(got)}"]
    assert server.stats["dev"].bytes_served == len(IMAGE)


def test_drop_at_zero_sends_no_byte(server):
    server.faults["*"] = [Fault("drop", at_byte=0)]
    with pytest.raises(http.client.IncompleteRead) as exc:
        get(server.url("app.bin", "x"))
    assert exc.value.partial == b""


def test_corrupt_truncate_wrong_file_and_stall(server):
    server.faults["c"] = [Fault("corrupt", at_byte=1000, length=4)]
    body = get(server.url("app.bin", "c"))[2]
    assert body[1000:1004] == bytes(b ^ 0xFF for b in IMAGE[1000:1004])
    assert body[:1000] == IMAGE[:1000] and body[1004:] == IMAGE[1004:]

    server.faults["t"] = [Fault("truncate", at_percent=50)]
    assert get(server.url("app.bin", "t"))[2] == IMAGE[: len(IMAGE) // 2]

    server.faults["w"] = [Fault("wrong-file", other_file="other.bin")]
    assert get(server.url("app.bin", "w"))[2] == b"other" * 100

    server.faults["s"] = [Fault("stall", at_byte=5000, seconds=0.05)]
    assert get(server.url("app.bin", "s"))[2] == IMAGE
    assert server.wait_idle()
    assert server.stats["s"].faults_fired == ["stall 0.05s at 5000"]


def test_unknown_and_escaping_paths_are_not_served(server, artefacts):
    (artefacts.parent / "secret.txt").write_text("no")
    for name in ("missing.bin", "../secret.txt", "%2e%2e/secret.txt"):
        with pytest.raises(urllib.error.HTTPError) as exc:
            get(f"http://{server.address[0]}:{server.address[1]}/{name}")
        assert exc.value.code == 404


def test_byte_listener_sees_progress(server):
    seen = []
    server.on_bytes(lambda device, name, end: seen.append((device, name, end)))
    get(server.url("app.bin", "p"))
    assert server.wait_idle()
    assert seen[-1] == ("p", "app.bin", len(IMAGE))
    assert [end for *_, end in seen] == sorted(end for *_, end in seen)


def test_https_with_the_local_ca(artefacts, tmp_path):
    ca, cert, key = make_local_ca(tmp_path / "tls")
    with OtaServer(artefacts, tls=server_context(cert, key)) as s:
        assert get(s.url("app.bin", "t"), context=ssl.create_default_context(cafile=ca))[2] == IMAGE
        curl = subprocess.run(["curl", "-sS", "--cacert", str(ca), s.url("app.bin", "curl")], capture_output=True)
        assert curl.returncode == 0 and curl.stdout == IMAGE
        with pytest.raises(urllib.error.URLError):
            get(s.url("app.bin", "untrusted"), context=ssl.create_default_context())


def test_fault_specs():
    assert parse("drop@40%") == Fault("drop", at_percent=40.0)
    assert parse("drop@12000#1") == Fault("drop", at_byte=12000, request=1)
    assert parse("stall@50%:3") == Fault("stall", at_percent=50.0, seconds=3.0)
    assert parse("corrupt@1000:16") == Fault("corrupt", at_byte=1000, length=16)
    assert parse("wrong-file=old.bin") == Fault("wrong-file", other_file="old.bin")
    for bad in ("explode@1", "drop@x", "drop@1#z", "drop"):
        with pytest.raises(RigError):
            parse(bad)


def test_link_profiles():
    assert profile("nbiot").rate_bps == 16_000
    assert profile("nbiot*100").rate_bps == 1_600_000
    with pytest.raises(RigError, match="unknown link profile"):
        profile("5g")
