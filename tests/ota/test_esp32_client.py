"""The virtual ESP32's OTA client against rig's real OTA server, one board in-process.

The board runs the whole boot flow (ROM, ESP-IDF bootloader model, app model); it is told
`ota <url>` on its console UART and fetches from rig.ota.server over loopback HTTP. Verdicts come
from the console and from the flash file read back as esptool would read the chip: which slot
otadata boots, and whether the slot holds the new image byte for byte.
"""

import time

import pytest

from rig import delta
from rig.image import factory, otadata
from rig.image.layouts import LAYOUTS
from rig.ota import releases
from rig.ota.faults import Fault
from rig.ota.server import OtaServer
from rig.sim import boot
from rig.sim.board import Board

LAYOUT = LAYOUTS["esp32-4mb-ota"]


class Esp32:
    def __init__(self, state_dir, ca: bytes = b""):
        """ca: the CA the factory app embeds for HTTPS OTA (none: it fetches over HTTP only)."""
        flash = bytearray(b"\xff" * LAYOUT.geometry.size)
        for region in factory.esp32_regions(releases.esp32_image("1.0.0", ca=ca)):
            flash[region.offset : region.offset + len(region.data)] = region.data
        state_dir.mkdir()
        (state_dir / "flash.bin").write_bytes(flash)
        self.flash_file = state_dir / "flash.bin"
        self.board = Board("esp32-ota", "esp32", LAYOUT, state_dir, boot.run)
        self.out = bytearray()
        self.board.add_listener(self.out.extend)
        self.board.set_power(True)
        self.wait_for("rig: confirmed")

    def text(self) -> str:
        return self.out.decode("latin-1")

    def wait_for(self, text: str, since: int = 0, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in (seen := self.text()[since:]):
            assert time.monotonic() < deadline, f"{text!r} not on the console; saw:\n{seen[-2000:]}"
            time.sleep(0.01)
        return seen

    def command(self, line: str) -> int:
        mark = len(self.out)
        self.board.console_input(line.encode() + b"\r\n")
        return mark

    def read(self, part: str, length: int | None = None) -> bytes:
        p = LAYOUT.part(part)
        with open(self.flash_file, "rb") as f:
            f.seek(p.offset)
            return f.read(length or p.size)

    def boots_slot(self) -> int:
        return otadata.parse(self.read("otadata")).active_slot(2)


@pytest.fixture
def esp32(tmp_path):
    board = Esp32(tmp_path / "esp32")
    yield board
    board.board.close()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    with OtaServer(root) as srv:
        yield srv


def publish(server, name: str, data: bytes) -> str:
    (server.root / name).write_bytes(data)
    return server.url(name, device="esp32-ota")


def test_full_image_update_boots_the_other_slot_and_confirms(esp32, server):
    new = releases.esp32_image("1.1.0")
    mark = esp32.command(f"ota {publish(server, 'app.bin', new)}")
    seen = esp32.wait_for("rig: confirmed", since=mark)
    assert "rig: ota done slot=1 version=1.1.0" in seen
    assert "rig: boot variant=esp32 version=1.1.0+0 slot=1 reset=software" in seen
    assert esp32.read("ota_1", len(new)) == new
    assert esp32.boots_slot() == 1
    assert server.device("esp32-ota").bytes_served == len(new)


def test_delta_update_is_applied_from_the_running_slot(esp32, server):
    old, new = releases.esp32_image("1.0.0"), releases.esp32_image("1.0.1")
    patch = delta.make(old, new, "p2")
    assert patch.kind == "patch"
    mark = esp32.command(f"ota {publish(server, 'app.rdlt', patch.data)}")
    seen = esp32.wait_for("rig: confirmed", since=mark)
    assert "kind=delta" in seen and "version=1.0.1+0 slot=1" in seen
    assert esp32.read("ota_1", len(new)) == new
    assert server.device("esp32-ota").bytes_served == len(patch.data)


def full_image_container(version: str):
    """A delta container of kind "full" (what `rig delta make` ships when a patch does not pay):
    a first-install container, made against no old image, carries the new image compressed."""
    made = delta.make(b"", releases.esp32_image(version), "p2")
    assert made.kind == "full"
    return made.data


def test_a_full_image_container_is_applied_whatever_the_running_slot_holds(esp32, server):
    new, container = releases.esp32_image("1.5.0"), full_image_container("1.5.0")
    assert len(container) < len(new) + 100
    mark = esp32.command(f"ota {publish(server, 'app.rdlt', container)}")
    seen = esp32.wait_for("rig: confirmed", since=mark)
    assert "kind=delta" in seen and "version=1.5.0+0 slot=1" in seen
    assert esp32.read("ota_1", len(new)) == new
    assert esp32.boots_slot() == 1
    assert server.device("esp32-ota").bytes_served == len(container)


def test_a_power_cut_while_applying_a_full_image_container_resumes(esp32, server):
    new = releases.esp32_image("1.6.0")
    url = publish(server, "app.rdlt", full_image_container("1.6.0"))
    esp32.board.arm_cut(after_ops=20, off_time=0.05)  # some sectors (erase, write, record each) in
    mark = esp32.command(f"ota {url}")
    esp32.wait_for("rig: confirmed", since=mark)  # power came back: the old image again
    assert esp32.boots_slot() == 0
    mark = esp32.command(f"ota {url}")
    seen = esp32.wait_for("rig: ota done", since=mark)
    assert int(seen.split("resume=")[1].split()[0]) > 0
    esp32.wait_for("rig: confirmed", since=mark + len(seen))
    assert esp32.read("ota_1", len(new)) == new
    assert esp32.boots_slot() == 1


def test_a_dropped_link_resumes_where_it_broke(esp32, server):
    new = releases.esp32_image("1.2.0")
    server.faults["esp32-ota"] = [Fault("drop", at_percent=40, request=1), Fault("drop", at_percent=75, request=2)]
    mark = esp32.command(f"ota {publish(server, 'app.bin', new)}")
    seen = esp32.wait_for("rig: confirmed", since=mark)
    assert seen.count("rig: ota link lost") == 2
    assert esp32.read("ota_1", len(new)) == new
    stats = server.device("esp32-ota")
    assert stats.requests == 3
    assert stats.bytes_served == len(new)  # every byte went over the wire once


def test_a_power_cut_mid_download_resumes_from_the_last_written_sector(esp32, server):
    new = releases.esp32_image("1.3.0")
    url = publish(server, "app.bin", new)
    esp32.board.arm_cut(after_ops=12, off_time=0.05)  # a few sectors (erase, write, record each) in
    mark = esp32.command(f"ota {url}")
    esp32.wait_for("rig: confirmed", since=mark)  # power came back: the old image again
    assert esp32.boots_slot() == 0
    mark = esp32.command(f"ota {url}")
    seen = esp32.wait_for("rig: ota done", since=mark)
    resumed = int(seen.split("resume=")[1].split()[0])
    assert resumed > 0 and resumed % 4096 == 0
    esp32.wait_for("rig: confirmed", since=mark + len(seen))
    assert esp32.read("ota_1", len(new)) == new
    # The second request asked for the rest from the first sector not recorded, nothing before it.
    assert server.device("esp32-ota").ranges[-1] == ("app.bin", resumed, len(new) - 1)


@pytest.mark.parametrize("name,mutate", [
    ("corrupt", lambda img: img[:5000] + bytes([img[5000] ^ 0xFF]) + img[5001:]),
    ("truncated", lambda img: img[: len(img) // 2]),
    ("wrong variant", lambda img: b"\x3d\xb8\xf3\x96" + img[4:]),  # an MCUboot header, not an ESP image
])
def test_a_bad_image_is_refused_and_otadata_left_alone(esp32, server, name, mutate):
    before = esp32.read("otadata")
    mark = esp32.command(f"ota {publish(server, 'bad.bin', mutate(releases.esp32_image('1.4.0')))}")
    seen = esp32.wait_for("rig: ota refused", since=mark)
    assert "rig: boot" not in seen
    assert esp32.read("otadata") == before
