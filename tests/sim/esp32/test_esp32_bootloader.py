"""The virtual ESP32's second-stage bootloader: slot choice, rollback, image checks, anti-rollback.

Each test flashes a partition table, otadata and apps with esptool, boots from SPI flash, and
judges only by the bootloader's console log and by otadata read back with esptool.
"""

import pytest
from esp32_harness import esptool, run_tool

from rig.image import esp_app, esp_partitions, otadata
from rig.image.esp_app import app_image
from rig.image.layouts import LAYOUTS

LAYOUT = LAYOUTS["esp32-4mb-ota"]
OTADATA = LAYOUT.part("otadata").offset
SLOT = [LAYOUT.part("ota_0").offset, LAYOUT.part("ota_1").offset]
DONE = ("Disabling RNG early entropy source...", "No bootable app partitions", "invalid header:",
        "load partition table error!")
State = otadata.State


@pytest.fixture
def flash(esp32, tmp_path):
    """flash({offset: bytes}): write them with esptool through the ROM loader."""

    def write(contents: dict[int, bytes]) -> None:
        esp32.power_cycle(download=True)
        args = []
        for n, (offset, data) in enumerate(sorted(contents.items())):
            path = tmp_path / f"part{n}.bin"
            path.write_bytes(data)
            args += [hex(offset), str(path)]
        esptool(esp32.port, "write-flash", *args)

    return write


@pytest.fixture
def flash_and_boot(esp32, flash):
    """flash_and_boot({offset: bytes}) -> the bootloader's log of the next boot from SPI flash."""

    def run(contents: dict[int, bytes]) -> str:
        flash(contents)
        return boot(esp32)

    return run


def boot(esp32) -> str:
    """Power-cycle into SPI boot; the console up to the bootloader's last line."""
    esp32.power_cycle(download=False)
    log = esp32.wait_for(*DONE)
    assert "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)" in log
    return log


def read_otadata(esp32, tmp_path) -> otadata.Otadata:
    esp32.power_cycle(download=True)
    out = tmp_path / "otadata.bin"
    esptool(esp32.port, "read-flash", hex(OTADATA), hex(otadata.SIZE), str(out))
    return otadata.parse(out.read_bytes())


def table() -> dict[int, bytes]:
    """The second-stage bootloader image and the partition table, as every ESP32 has them."""
    return {LAYOUT.part("bootloader").offset: esp_app.bootloader_image(),
            esp_partitions.OFFSET: esp_partitions.build(LAYOUT)}


def ota(*entries: tuple[int, int] | None) -> bytes:
    """Otadata with (seq, state) per sector, None for an erased sector."""
    made = [otadata.Entry.make(*e) if e else otadata.Entry() for e in entries]
    return otadata.Otadata((made[0], made[1])).pack()


def loaded_from(log: str) -> int | None:
    for slot, offset in enumerate(SLOT):
        if f"boot: Loaded app from partition at offset 0x{offset:x}" in log:
            return slot
    return None


def test_rom_needs_a_second_stage_bootloader_image_at_0x1000(esp32, flash_and_boot):
    bootloader = LAYOUT.part("bootloader")
    log = flash_and_boot({bootloader.offset: esp_app.bootloader_image()})
    assert "load:0x3fff0000,len:" in log and "entry 0x40078000" in log
    assert "boot: ESP-IDF v5.1.2 2nd stage bootloader" in log
    assert "flash_parts: partition 0 invalid magic number 0xffff" in log  # no partition table yet

    esp32.power_cycle(download=True)
    esptool(esp32.port, "erase-region", hex(bootloader.offset), hex(bootloader.size))
    assert boot(esp32).endswith("invalid header: 0xffffffff\r\n")


def test_blank_otadata_boots_ota_0_and_records_it_valid(esp32, flash_and_boot, tmp_path):
    log = flash_and_boot({**table(), SLOT[0]: app_image("1.0.0")})
    assert " 3 ota_0            OTA app          00 10 00010000 001e0000" in log
    assert "boot: otadata[0..1] in initial state" in log
    assert "esp_image: segment 0: paddr=00010020 vaddr=3f400020" in log
    assert loaded_from(log) == 0
    assert "boot: Set actual ota_seq=1 in otadata[0]" in log
    state = read_otadata(esp32, tmp_path)
    assert (state.entries[0].seq, state.entries[0].state) == (1, State.VALID)


def test_new_image_goes_on_trial_and_is_rolled_back_if_it_never_confirms(esp32, flash_and_boot, tmp_path):
    log = flash_and_boot({**table(), OTADATA: ota((1, State.VALID), (2, State.NEW)),
                          SLOT[0]: app_image("1.0.0"), SLOT[1]: app_image("2.0.0")})
    assert loaded_from(log) == 1
    state = read_otadata(esp32, tmp_path)
    assert state.entries[1].state == State.PENDING_VERIFY

    # The app did not mark itself valid before the next reset: the bootloader aborts it.
    log = boot(esp32)
    assert loaded_from(log) == 0
    state = read_otadata(esp32, tmp_path)
    assert [e.state for e in state.entries] == [State.VALID, State.ABORTED]


def test_corrupt_image_falls_back_to_the_other_slot(esp32, flash_and_boot):
    bad = bytearray(app_image("2.0.0"))
    bad[0x2000] ^= 0xFF  # a flipped byte inside a segment: the checksum no longer matches
    log = flash_and_boot({**table(), OTADATA: ota((1, State.VALID), (2, State.VALID)),
                          SLOT[0]: app_image("1.0.0"), SLOT[1]: bytes(bad)})
    assert "E (" in log and "esp_image: Checksum failed." in log
    assert "boot: OTA app partition slot 1 is not bootable" in log
    assert loaded_from(log) == 0


def test_otadata_naming_an_erased_slot_is_skipped_and_empty_flash_halts(esp32, flash_and_boot):
    # With anti-rollback, an otadata entry whose slot has no app description is not a candidate.
    log = flash_and_boot({**table(), OTADATA: ota((1, State.VALID), (2, State.VALID)),
                          SLOT[0]: app_image("1.0.0")})
    assert loaded_from(log) == 0

    esp32.power_cycle(download=True)
    esptool(esp32.port, "erase-region", hex(SLOT[0]), "0x1000")
    log = boot(esp32)
    assert "boot: ota data partition invalid and no factory, will try all partitions" in log
    assert "boot: OTA app partition slot 0 is not bootable" in log
    assert "boot: No bootable app partitions in the partition table" in log
    assert loaded_from(log) is None


def test_anti_rollback_refuses_an_app_older_than_the_efuse_secure_version(esp32, flash_and_boot, tmp_path):
    esp32.boot(download=True)
    run_tool("espefuse", "--port", esp32.port, "--before", "no-reset", "--do-not-confirm",
             "burn-efuse", "SECURE_VERSION", "0x3")  # popcount 2
    log = flash_and_boot({**table(), OTADATA: ota((1, State.VALID), (2, State.VALID)),
                          SLOT[0]: app_image("2.0.0", secure_version=2),
                          SLOT[1]: app_image("1.0.0", secure_version=1)})
    assert "boot: Secure version (from eFuse) = 2" in log
    # otadata's newest entry (seq 2) names slot 1, but its app is older than the eFuse allows.
    assert loaded_from(log) == 0


def test_booting_a_valid_app_burns_its_secure_version(esp32, flash_and_boot):
    log = flash_and_boot({**table(), OTADATA: ota((1, State.VALID), None),
                          SLOT[0]: app_image("1.0.0", secure_version=3)})
    assert loaded_from(log) == 0
    assert "boot: Secure version (from eFuse) = 0" in log
    assert "boot: Secure version (from eFuse) = 3" in boot(esp32)


@pytest.mark.parametrize("tear", [False, True], ids=["before", "torn"])
@pytest.mark.parametrize("op", [0, 1], ids=["erase", "write"])
@pytest.mark.parametrize("trial", [State.NEW, State.PENDING_VERIFY], ids=["start-trial", "rollback"])
def test_power_cut_at_the_bootloaders_otadata_writes_never_bricks(esp32, flash, trial, op, tear):
    """NEW -> PENDING_VERIFY and PENDING_VERIFY -> ABORTED are each one sector erase and one write;
    cut power at each (before it, or torn halfway), then let the board boot when power returns."""
    flash({**table(), OTADATA: ota((1, State.VALID), (2, trial)),
           SLOT[0]: app_image("1.0.0"), SLOT[1]: app_image("2.0.0")})
    esp32.arm_cut(op, tear)
    esp32.power_cycle(download=False)
    log = esp32.wait_for("boot: Loaded app", "No bootable app partitions")
    assert log.count("2nd stage bootloader") == 2  # the cut boot, then the one after power returned
    assert "No bootable app partitions" not in log
    # Only a cut before anything reached flash lets a new image start its trial on the next boot;
    # a torn or erased entry is invalid, so the last confirmed image runs. An image that was on
    # trial never runs again.
    starts_trial = trial == State.NEW and op == 0 and not tear
    assert loaded_from(log) == (1 if starts_trial else 0)


@pytest.fixture(scope="session")
def sb_keys(tmp_path_factory) -> dict[str, str]:
    """Secure Boot V2 signing keys made by `espsecure generate-signing-key`, once per session
    (an RSA-3072 key takes a second or so): two RSA-3072 keys, as the ESP32 verifies, and an
    ECDSA-P256 key, as only later chips do."""
    folder = tmp_path_factory.mktemp("sb-keys")
    keys = {"trusted": "rsa3072", "other": "rsa3072", "ecdsa": "ecdsa256"}
    for name, scheme in keys.items():
        run_tool("espsecure", "generate-signing-key", "--version", "2", "--scheme", scheme, str(folder / f"{name}.pem"))
    return {name: str(folder / f"{name}.pem") for name in keys}


def signed_app(tmp_path, key: str, version: str) -> bytes:
    """An app signed by `espsecure sign-data --version 2` with `key`."""
    app, signed = tmp_path / f"app-{version}.bin", tmp_path / f"app-{version}-signed.bin"
    app.write_bytes(app_image(version))
    run_tool("espsecure", "sign-data", "--version", "2", "--keyfile", key, "--output", str(signed), str(app))
    return signed.read_bytes()


def burn_secure_boot(esp32, key: str) -> None:
    """`espefuse burn-key-digest` of `key` and ABS_DONE_1, as a production line enables Secure Boot V2."""
    esp32.boot(download=True)
    espefuse = ("espefuse", "--port", esp32.port, "--before", "no-reset", "--do-not-confirm")
    run_tool(*espefuse, "burn-key-digest", key)
    run_tool(*espefuse, "burn-efuse", "ABS_DONE_1", "1")


def test_secure_boot_v2_boots_only_apps_signed_with_the_burnt_key(esp32, flash_and_boot, tmp_path, sb_keys):
    trusted = signed_app(tmp_path, sb_keys["trusted"], "1.0.0")
    untrusted = signed_app(tmp_path, sb_keys["other"], "2.0.0")
    burn_secure_boot(esp32, sb_keys["trusted"])
    log = flash_and_boot({**table(), OTADATA: ota((1, State.VALID), (2, State.VALID)),
                          SLOT[0]: trusted, SLOT[1]: untrusted})
    # What ESP-IDF's bootloader prints, no more: it does not say why (secure_boot_signatures_bootloader.c).
    assert "secure_boot_v2: Verifying with RSA-PSS..." in log
    assert "E (" in log and "secure_boot_v2: Secure Boot V2 verification failed." in log
    assert "esp_image: Secure boot signature verification failed" in log
    assert "boot: OTA app partition slot 1 is not bootable" in log
    assert "secure_boot_v2: Signature verified successfully!" in log
    assert loaded_from(log) == 0


def test_the_esp32_refuses_an_ecdsa_signature_block_even_with_its_key_burnt(esp32, flash_and_boot, tmp_path,
                                                                          sb_keys):
    """ECDSA Secure Boot V2 blocks are for the C2, C6, H2 and later: the ESP32's ROM checks RSA-3072
    blocks only, so an app signed with ECDSA never boots, whatever digest is burnt."""
    burn_secure_boot(esp32, sb_keys["ecdsa"])  # espefuse burns any key's digest; the chip cannot use it
    log = flash_and_boot({**table(), OTADATA: ota((1, State.VALID), None),
                          SLOT[0]: signed_app(tmp_path, sb_keys["ecdsa"], "1.0.0")})
    assert "secure_boot_v2: Secure Boot V2 verification failed." in log
    assert "boot: OTA app partition slot 0 is not bootable" in log
    assert "Signature verified successfully!" not in log and loaded_from(log) is None
