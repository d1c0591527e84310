"""Test-only fault switches: start a lab whose board models are deliberately broken.

The HIL suite proves that each of its scenarios can fail: it starts a second virtual lab with
`RIG_SIM_BROKEN=<switch>[,<switch>...]` in the environment of `rig lab up` (the daemon inherits
it) and checks that the scenario reports the misbehaviour. Nothing outside the sim reads this, and
no verdict depends on it: verdicts come from console, flash read-back and protocol replies only.

Switches:
    no-signature-check   MCUboot boots images whatever their signature or key hash says
    no-image-check       the ESP32 OTA client and bootloader accept an image whose checksum or
                         SHA-256 is wrong (ESP32 has no signature check without Secure Boot V2)
    no-revert            an unconfirmed image is never rolled back (MCUboot: no revert swap;
                         ESP-IDF bootloader: PENDING_VERIFY is not turned into ABORTED)
    resume-wrong-offset  a resumed transfer continues one chunk past where it stopped (ESP32 OTA
                         client's HTTP Range; MCUmgr upload's reply offset)
"""

import os

ENV = "RIG_SIM_BROKEN"
SWITCHES = ("no-signature-check", "no-image-check", "no-revert", "resume-wrong-offset")


def broken(switch: str) -> bool:
    """True when the lab was started with this fault switch."""
    assert switch in SWITCHES, switch  # a typo here would silently disable a broken-model test
    return switch in os.environ.get(ENV, "").split(",")
