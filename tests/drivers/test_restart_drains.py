"""A board stopped and started again - power cycle, reset - has its console drained while it is held
(rig.drivers.console.restart): what the running board sent just before the stop is not read as the
new start's output. Under load the off request lands late; here it is made late on purpose, so the
running board gets its lines out between the host's decision and the cut. The boards are observed
through their consoles only."""

import time

from rig.drivers.strategy import parse_boot_fields
from rig.ota.campaign import Campaign, Verdict

BOARD = "stm32l0-1"
LATE_S = 1.5  # longer than the reference app's `rig: alive` period (1 s, firmware/common/main.c)


def landing_late(off, before=lambda: None):
    """The power switch's off request, landing LATE_S late; `before` happens in the meantime."""

    def late():
        before()
        time.sleep(LATE_S)
        off()

    return late


def next_line(board) -> str:
    return board.console.expect_line(r"rig: (alive|boot) [^\r\n]*", timeout=20).group(0).strip()


def test_an_alive_line_sent_just_before_the_power_cut_is_not_read_after_it(booted, monkeypatch):
    board = booted(BOARD)
    monkeypatch.setattr(board.power, "off", landing_late(board.power.off))
    board.power_cycle()
    line = next_line(board)
    assert line.startswith("rig: boot "), f"read after the power cycle: {line!r}"
    assert parse_boot_fields(line.removeprefix("rig: boot "))["reset"] == "power-on"


def test_a_boot_just_before_the_cut_is_not_the_campaigns_boot_after_it(booted, monkeypatch):
    board = booted(BOARD)
    # The board restarts just before the cut (as after a flasher's reset, or its watchdog): it
    # prints a boot line and confirms, and only then does the power go.
    board.target.activate(board.swd)
    monkeypatch.setattr(board.power, "off", landing_late(board.power.off, before=board.swd.reset))
    campaign = Campaign(board, target=None, signer=None)  # its power cycle and console reading alone
    verdict, boots = Verdict(board.board.id, board.board.variant, "boot to app", "updated"), []
    assert campaign._boot_to_app(verdict, boots) == "1.0.0+0 (power-on)"
    assert [b.reset for b in boots] == ["power-on"]


def test_a_probe_reset_reads_no_line_from_before_it(booted):
    board = booted(BOARD)
    time.sleep(LATE_S)  # the app prints `rig: alive` meanwhile; nobody reads it
    board.target.activate(board.reset)
    board.reset.reset()
    line = next_line(board)
    assert line.startswith("rig: boot "), f"read after the reset: {line!r}"
    assert parse_boot_fields(line.removeprefix("rig: boot "))["reset"] != "power-on"

