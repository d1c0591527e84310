"""Test-only defects: the defect catalogue, and a lab whose boards carry one of them.

The HIL suite proves that its scenarios can fail: it starts a second virtual lab whose boards carry
one defect (`enable`: `RIG_SIM_BROKEN=<switch>[,<switch>...]` in the environment of `rig lab up`,
which the daemon inherits, and for the STM32s' firmware a defect build its campaigns install) and
checks that the scenario reports the misbehaviour. Nothing outside the sim reads the switch, and
no verdict depends on it: verdicts come from console, flash read-back and protocol replies only.

Each switch is one defect of CATALOGUE: a bug of the kind real bootloaders and update clients have
shipped, with the upstream issue or fix where one exists. Everything else about the broken board
stays correct, so only the scenarios that guard against that bug can notice. `python -m bench
catch-rate` runs the suite against every defect (bench/bench_catch_rate.py) and
docs/scenarios.md says which scenario kills which.

A defect's kind says where it lives: MODEL - in a chip or bootloader model of the lab (MCUboot,
the ESP32 ROM and second-stage bootloader); FIRMWARE - in what runs on the board (the app, its
OTA client, its SMP server). `enable` is the one place that says how a lab gets one (a Breakage):
a model's defect is a switch in the environment of `rig lab up`; a firmware defect is, on the
STM32s, a defect build of rig's C app (`rig build --defect`, rig/build/defects.py) that the board
starts from and is updated to, and, on the ESP32, which stays modelled (no Xtensa toolchain), a
switch of its app and OTA client models.
"""

import enum
import os
from dataclasses import dataclass, field

from rig.build import defects as builds

ENV = "RIG_SIM_BROKEN"


class Kind(enum.Enum):
    MODEL = "model"  # a switch of a chip / bootloader model
    # what the board runs: a defect build of rig's C app on the STM32s, a switch of the ESP32's
    # modelled app / OTA client
    FIRMWARE = "firmware"


@dataclass(frozen=True)
class Defect:
    switch: str
    kind: Kind
    component: str  # mcuboot | esp-idf bootloader | esp32 ota client | img_mgmt | app
    doc: str  # the kind of bug it stands for
    upstream: str = ""  # the upstream issue / fix it is modelled on, where one exists


MCUBOOT, ESP_BOOT, ESP_CLIENT, SMP, APP = "mcuboot", "esp-idf bootloader", "esp32 ota client", "img_mgmt", "app"

CATALOGUE: tuple[Defect, ...] = (
    # -- MCUboot
    Defect("no-signature-check", Kind.MODEL, MCUBOOT,
           "boots and swaps in images whatever their hash, key hash or signature say (image "
           "validation compiled out)"),
    Defect("no-primary-validation", Kind.MODEL, MCUBOOT,
           "MCUBOOT_VALIDATE_PRIMARY_SLOT off: the primary slot is booted unchecked, so a damaged "
           "or truncated image in it runs (MCUboot's docs recommend it on for any flash an attacker "
           "or a bad write can reach)"),
    Defect("no-security-counter", Kind.MODEL, MCUBOOT,
           "hardware downgrade prevention ignores the stored security counter: an older image with a "
           "lower SEC_CNT is swapped in and booted"),
    Defect("no-revert", Kind.MODEL, MCUBOOT + "," + ESP_BOOT,
           "an unconfirmed image is never rolled back (MCUboot: no revert swap; ESP-IDF bootloader: "
           "PENDING_VERIFY is not turned into ABORTED)"),
    Defect("image-ok-on-test", Kind.MODEL, MCUBOOT,
           "a test swap sets image_ok in the primary trailer as a permanent one does, so a tested "
           "image that never confirms is never reverted"),
    Defect("request-erased-first", Kind.MODEL, MCUBOOT,
           "the upgrade request (the secondary's trailer) is erased before the primary's trailer "
           "records the swap: a power cut in between loses the update",
           "mcu-tools/mcuboot#829 (swap-move brick when reset during the swap)"),
    Defect("revert-resumed-swap", Kind.MODEL, MCUBOOT,
           "after finishing a swap a power cut interrupted, the swap type is read from the trailers "
           "again; the image just swapped in is not confirmed yet, so it is reverted before it ran",
           "mcu-tools/mcuboot#480, fixed by #485 (double swap on interrupted revert)"),
    Defect("revert-no-image-ok", Kind.MODEL, MCUBOOT,
           "the revert swap does not set image_ok in the primary trailer: if power goes before the "
           "reverted app confirms itself, the next boot reverts the revert and runs the failed image "
           "again", "mcu-tools/mcuboot#480 (confirm flag on the wrong slot after a revert)"),
    Defect("swap-status-not-written", Kind.MODEL, MCUBOOT,
           "no swap status entries are written: after a power cut mid-swap the bootloader cannot "
           "tell where the swap stopped, and the half-moved slots are taken for fresh ones",
           "zephyrproject-rtos/zephyr#28933 (swap-move bricks when reset during the swap)"),
    Defect("swap-size-rounded-down", Kind.MODEL, MCUBOOT,
           "the swap covers the image size rounded down to whole sectors: the last, partial sector "
           "of the new image stays behind (invisible while every test image fits one sector)"),
    # -- ESP-IDF second-stage bootloader
    Defect("skip-validate-on-power-on", Kind.MODEL, ESP_BOOT,
           "CONFIG_BOOTLOADER_SKIP_VALIDATE_ON_POWER_ON: the app is not verified after a power-on "
           "reset, so a damaged app partition is jumped into"),
    Defect("no-fallback", Kind.MODEL, ESP_BOOT,
           "when the selected app does not verify, the bootloader stops instead of trying the other "
           "OTA slots as bootloader_utility_load_boot_image does"),
    Defect("otadata-crc-unchecked", Kind.MODEL, ESP_BOOT,
           "an otadata entry counts as valid without its CRC, so a torn or damaged copy with the "
           "higher seq wins over the intact one",
           "esp-rs/esp-hal#5767 (otadata entries not validated by CRC before use)"),
    Defect("esp-no-anti-rollback", Kind.MODEL, ESP_BOOT,
           "the bootloader boots an app whose secure_version is below the eFuse's (anti-rollback "
           "not checked at boot)"),
    # -- the ESP32 app's OTA client
    Defect("no-image-check", Kind.FIRMWARE, ESP_CLIENT + "," + ESP_BOOT,
           "the OTA client and bootloader accept an image whose checksum or SHA-256 is wrong (ESP32 "
           "has no signature check without Secure Boot V2)"),
    Defect("client-no-anti-rollback", Kind.FIRMWARE, ESP_CLIENT,
           "esp_https_ota_finish does not compare the new app's secure_version with the eFuse, so "
           "a downgrade is written and handed to the bootloader"),
    Defect("no-cert-check", Kind.FIRMWARE, ESP_CLIENT,
           "the OTA client does not verify the HTTPS server's certificate at all "
           "(MBEDTLS_SSL_VERIFY_NONE, CONFIG_ESP_TLS_SKIP_SERVER_CERT_VERIFY)"),
    Defect("no-time-check", Kind.FIRMWARE, ESP_CLIENT,
           "the OTA client's TLS ignores certificate validity dates (mbedtls built without "
           "MBEDTLS_HAVE_TIME_DATE, ESP-IDF's default)"),
    Defect("no-host-check", Kind.FIRMWARE, ESP_CLIENT,
           "the OTA client accepts a certificate issued for another host (esp_http_client's "
           "skip_cert_common_name_check = true)"),
    Defect("resume-wrong-offset", Kind.FIRMWARE, ESP_CLIENT + "," + SMP,
           "a resumed transfer continues at the wrong offset: the ESP32 client's Range request "
           "skips a chunk, or a page lands early; img_mgmt's reply offset is one write buffer ahead "
           "and its flash writer starts over at the slot's first byte",
           "espressif/esp-idf#17960 (resume writes at the old offset while the server sends byte 0)"),
    Defect("resume-no-erase", Kind.FIRMWARE, ESP_CLIENT,
           "after a power cut the client writes the first sector it resumes into without erasing "
           "it (assuming the sector was erased before the cut): harmless over an erased slot or an "
           "almost identical release, corrupt over anything else",
           "espressif/esp-idf#13065 (partial download corrupts the image)"),
    Defect("set-boot-before-verify", Kind.FIRMWARE, ESP_CLIENT,
           "esp_ota_set_boot_partition is called before the written image is verified: a corrupt "
           "download is handed to the bootloader as the next app"),
    Defect("verify-from-ram", Kind.FIRMWARE, ESP_CLIENT,
           "esp_ota_end's check hashes the bytes received, not the bytes read back from flash, so "
           "a bad write to flash is never noticed"),
    Defect("ota-plaintext-write", Kind.FIRMWARE, ESP_CLIENT,
           "on a flash-encrypted chip the client writes the new image past the flash cache "
           "(esp_partition_write_raw / esp_flash_write instead of esp_partition_write), so the slot "
           "holds plaintext the chip decrypts into noise (ESP-IDF's flash encryption guide: encrypted "
           "partitions must be written with the encrypted write API)"),
    # -- MCUmgr img_mgmt (the STM32 firmware's SMP server)
    Defect("smp-match-always", Kind.FIRMWARE, SMP,
           "the last upload reply says `match: true` whatever the slot holds (the image check "
           "compares the client's hash with itself)"),
    Defect("smp-test-is-permanent", Kind.FIRMWARE, SMP,
           "image state write treats a test request as confirm=true: MCUboot swaps the image in "
           "permanently and never reverts it"),
    Defect("interrupted-upload-blocks-slot", Kind.FIRMWARE, SMP,
           "what an interrupted upload left in the secondary slot (an image header, no valid image) "
           "is taken for a slot in use: after a power cut mid-upload every new upload is refused "
           "with NO_FREE_SLOT instead of erasing the slot and writing it over",
           "apache/mynewt-mcumgr#97, #98 (upload refused after an interrupted one)"),
    # -- the app
    Defect("confirm-not-persisted", Kind.FIRMWARE, APP,
           "the app prints `rig: confirmed` but its confirm never reaches flash (a settings write "
           "never committed): no image_ok, no VALID in otadata, so the next reset rolls it back"),
    Defect("confirm-before-health", Kind.FIRMWARE, APP,
           "the app confirms itself at start-up, before its health check: an image that fails the "
           "check stays for good"),
    Defect("watchdog-never-bites", Kind.FIRMWARE, APP,
           "the watchdog is never started (IWDG not enabled / task WDT off): a hung image hangs "
           "until someone power-cycles the board"),
)
SWITCHES = tuple(d.switch for d in CATALOGUE)
BY_SWITCH = {d.switch: d for d in CATALOGUE}

# Defects only a board in another state can show (on the shared rack's boards they change nothing,
# so no campaign scenario can): switch -> (the pytest test that catches it, the test that makes the
# same update on a faithful board of that state - the control `bench catch-rate` runs).
_ENCRYPTED_OTA = "tests/provision/test_esp32_ota_encrypted.py::"
PROVED_BY_TEST: dict[str, tuple[str, str]] = {
    "ota-plaintext-write": (  # a flash-encrypted ESP32
        _ENCRYPTED_OTA + "test_an_ota_client_writing_past_the_flash_encryption_does_not_install",
        _ENCRYPTED_OTA + "test_an_update_signed_with_the_station_key_installs_and_keeps_the_identity"),
}


def broken(switch: str) -> bool:
    """True when the lab was started with this fault switch."""
    assert switch in BY_SWITCH, switch  # a typo here would silently disable a broken-model test
    return switch in os.environ.get(ENV, "").split(",")


@dataclass(frozen=True)
class Breakage:
    """How a lab's boards carry one defect."""

    # added to the environment of `rig lab up`: the lab's models that implement the switch carry
    # it (chips, bootloaders, the ESP32's app and OTA client); the STM32 firmware is not a model
    env: dict[str, str] = field(default_factory=dict)
    # the defect build of rig's C app (rig.build.defects) every STM32 release is made from - the
    # image the board starts from and every update (rig.ota.kit.CampaignKit's defect)
    build: str | None = None


def enable(switch: str) -> Breakage:
    """How a lab's boards come to carry this defect."""
    if switch not in BY_SWITCH:
        raise KeyError(f"no defect {switch!r} in rig.sim.broken.CATALOGUE")
    defect = BY_SWITCH[switch]
    # img_mgmt is the STM32s' SMP server, in their C firmware alone: no model of the lab has one
    modelled = not set(defect.component.split(",")) <= {SMP}
    return Breakage(env={ENV: switch} if modelled else {}, build=switch if switch in builds.DEFECTS else None)
