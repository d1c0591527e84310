"""`rig flash`: write an image to a board through its own flasher (pyocd for STM32, esptool for ESP32)."""

from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from rig.cli.bench import bench_options, held_board
from rig.cli.console import out
from rig.errors import RigError
from rig.image.layouts import LAYOUTS

DEFAULT_PARTITION = {"stm32h7": "slot0", "stm32l0": "slot0", "esp32": "ota_0"}


@click.command()
@bench_options
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--partition", metavar="NAME",
              help="Flash partition to write at (from the board's layout).  [default: slot0 on STM32, ota_0 on ESP32]")
@click.option("--offset", type=lambda v: int(v, 0), metavar="N",
              help="Flash offset instead of a partition (from the start of flash, e.g. 0x8000).")
@click.option("--no-verify", is_flag=True, help="Skip the read-back comparison after writing.")
@click.option("--no-reset", is_flag=True, help="Leave the board as the flasher left it (STM32: core halted).")
def flash(rack, board_id, image, partition, offset, no_verify, no_reset):
    """Write IMAGE to a board's flash, verify it, and restart the board.

    STM32 boards are written over SWD with pyocd (probe by its unique id), ESP32 boards through the
    ROM loader with esptool (reset into it over DTR/RTS). Offsets are from the start of flash, as
    in rig.image.layouts; the default is the board's primary application slot.

    \b
      rig flash --board stm32h7-1 build/stm32h7/rig-ref.signed.bin
      rig flash --board esp32-1 --offset 0x8000 partitions.bin
    """
    data = image.read_bytes()
    if not data:
        raise RigError(f"{image}: the file is empty; nothing to flash")
    with held_board(rack, board_id, "flash") as drivers:
        layout = LAYOUTS[drivers.board.flash_layout]
        where = offset if offset is not None else _partition_offset(layout, partition, drivers.board.variant, len(data))
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      console=out, transient=False) as bar:
            task = bar.add_task(f"{board_id} @0x{where:x}", total=len(data))
            drivers.flash(data, where, verify=not no_verify,
                          progress=lambda done, total: bar.update(task, completed=done, total=total))
            bar.update(task, completed=len(data))
        if not no_reset and drivers.swd:
            # esptool already hard-reset an ESP32 into its app; pyocd leaves the core halted.
            drivers.target.activate(drivers.reset)
            drivers.reset.reset()
    checked = "written" if no_verify else "written and verified"
    out.print(f"{board_id}: {len(data)} bytes {checked} at 0x{where:x} ({drivers.flasher.__class__.__name__})")


def _partition_offset(layout, name, variant, size) -> int:
    name = name or DEFAULT_PARTITION[variant]
    try:
        part = layout.part(name)
    except KeyError:
        names = ", ".join(p.name for p in layout.partitions)
        raise RigError(f"layout {layout.name} has no partition {name!r}; one of {names}") from None
    if size > part.size:
        raise RigError(f"the image is {size} bytes, partition {name} holds {part.size}; "
                       "check the image or pick a bigger partition")
    return part.offset
