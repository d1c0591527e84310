"""Test-only fault switches: start a lab whose board models are deliberately broken.

The HIL suite proves that each of its scenarios can fail: it starts a second virtual lab with
`RIG_SIM_BROKEN=<switch>[,<switch>...]` in the environment of `rig lab up` (the daemon inherits
it) and checks that the scenario reports the misbehaviour. Nothing outside the sim reads this, and
no verdict depends on it: verdicts come from console, flash read-back and protocol replies only.
Each switch is a bug real bootloaders and update clients have shipped with; everything else about
the broken board stays correct, so only the scenarios that guard against that bug can notice.

Switches:
    no-signature-check     MCUboot boots images whatever their signature or key hash says
    no-image-check         the ESP32 OTA client and bootloader accept an image whose checksum or
                           SHA-256 is wrong (ESP32 has no signature check without Secure Boot V2)
    no-revert              an unconfirmed image is never rolled back (MCUboot: no revert swap;
                           ESP-IDF bootloader: PENDING_VERIFY is not turned into ABORTED)
    resume-wrong-offset    a resumed transfer continues past where it stopped. ESP32 OTA client:
                           after a broken link the HTTP Range skips the last chunk received; after
                           a power cut a full image is fetched from one page past its progress
                           record while the slot is written from the record (every later page
                           lands a page early), and a delta patch is fetched from the recorded
                           image offset instead of its start. MCUmgr img_mgmt: a resumed upload's
                           reply offset is one write buffer ahead; and this server keeps its
                           upload state across a power cut (as a firmware that saves it to resume
                           uploads after a reboot would) but starts its flash writer over at the
                           slot's first byte
    confirm-not-persisted  the app prints `rig: confirmed` but its confirm never reaches flash (a
                           settings write that is never committed): no image_ok in the MCUboot
                           trailer, no VALID in otadata, so the next reset rolls the image back
    request-erased-first   MCUboot erases the upgrade request (the secondary slot's trailer) before
                           the primary's trailer records the swap: a power cut in between loses
                           the update, and the old image boots as if none had been asked for
    revert-resumed-swap    after MCUboot finishes a swap that a power cut interrupted, it takes the
                           swap type from the trailers again; the image it just swapped in is not
                           confirmed yet, so it reverts it before it ever ran
    no-cert-check          the ESP32 OTA client does not verify the HTTPS server's certificate at
                           all (MBEDTLS_SSL_VERIFY_NONE, CONFIG_ESP_TLS_SKIP_SERVER_CERT_VERIFY)
    no-time-check          the ESP32 OTA client's TLS ignores certificate validity dates (mbedtls
                           built without MBEDTLS_HAVE_TIME_DATE, ESP-IDF's default)
    no-host-check          the ESP32 OTA client accepts a certificate issued for another host
                           (esp_http_client's skip_cert_common_name_check = true)
"""

import os

ENV = "RIG_SIM_BROKEN"
SWITCHES = ("no-signature-check", "no-image-check", "no-revert", "resume-wrong-offset", "confirm-not-persisted",
            "request-erased-first", "revert-resumed-swap", "no-cert-check", "no-time-check", "no-host-check")


def broken(switch: str) -> bool:
    """True when the lab was started with this fault switch."""
    assert switch in SWITCHES, switch  # a typo here would silently disable a broken-model test
    return switch in os.environ.get(ENV, "").split(",")
