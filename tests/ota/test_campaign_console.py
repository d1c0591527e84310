"""How a campaign reads a board's console lines into boots (rig.ota.campaign), on lines as real
boards print them - no board needed."""

from rig.ota.campaign import Campaign, Verdict


def boots_seen(lines: list[str]):
    campaign = Campaign.__new__(Campaign)  # the console reading alone: no board, no lab
    campaign._rom_reset = ""
    verdict, boots = Verdict("stm32l0-1", "stm32l0", "never confirms", "rolled back"), []
    for line in lines:
        campaign._note(verdict, boots, line)
    return verdict, boots


def test_a_boot_line_a_reset_cut_off_counts_no_boot():
    """A board reset mid-print: the bootloader's first line follows on the same console line (seen
    in the nightly broken-model run: 'never confirms' with image-ok-on-test, which errored with
    "version 'I:': expected MAJOR.MINOR.REVISION[+BUILD]")."""
    verdict, boots = boots_seen(["rig: boot variant=stm32l0 version=I: Starting bootloader",
                                 "rig: boot variant=stm32l0 version=1.0.0+0 slot=0 reset=watchdog boots=2 fault=none",
                                 "rig: confirmed"])
    assert [(b.version, b.reset, b.confirmed) for b in boots] == [("1.0.0+0", "watchdog", True)]
    assert verdict.console[0] == "rig: boot variant=stm32l0 version=I: Starting bootloader"
