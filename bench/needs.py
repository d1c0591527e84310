"""A benchmark that runs rig's reference firmware says in one line why it steps aside without it."""

from rich.console import Console

from rig.build import cache
from rig.errors import RigError
from rig.image.mcuboot import Version


def firmware_missing(console: Console, bench: str) -> bool:
    """True, with one line printed, when the reference firmware cannot be built here (no
    arm-none-eabi-gcc): the bench has nothing to run then."""
    try:
        cache.binary("stm32l0", "none", Version.parse("1.0.0"))
    except RigError as exc:
        console.print(f"{bench}: skipped ({exc})")
        return True
    return False
