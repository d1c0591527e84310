"""`rig flash`: write images to a board through its own flasher (pyocd for STM32, esptool for ESP32)."""

from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from rig.cli.bench import bench_options, held_board
from rig.cli.console import out
from rig.errors import RigError
from rig.image.layouts import LAYOUTS
from rig.variants import facts


@click.command()
@bench_options
@click.argument("images", nargs=-1, required=True, metavar="[OFFSET=]FILE...")
@click.option("--partition", metavar="NAME",
              help="Partition to write a single FILE at (from the board's layout).  "
                   "[default: slot0 on STM32, ota_0 on ESP32]")
@click.option("--offset", type=lambda v: int(v, 0), metavar="N",
              help="Flash offset to write a single FILE at (from the start of flash, e.g. 0x8000).")
@click.option("--skip-unchanged", is_flag=True,
              help="Compare on the board first and write only the files whose bytes differ.")
@click.option("--no-verify", is_flag=True, help="Skip the read-back comparison after writing.")
@click.option("--no-reset", is_flag=True, help="Leave the board as the flasher left it (STM32: core halted).")
def flash(rack, coordinator, board_id, images, partition, offset, skip_unchanged, no_verify, no_reset):
    """Write files to a board's flash in one flasher session, verify them, and restart the board.

    STM32 boards are written over SWD with pyocd (probe by its unique id), ESP32 boards through the
    ROM loader with esptool (reset into it over DTR/RTS). Offsets are from the start of flash, as
    in rig.image.layouts. A single FILE goes to the board's primary application slot unless
    --partition or --offset says otherwise; several files each need their OFFSET=, as with
    `esptool write-flash`.

    \b
      rig flash --board stm32h7-1 build/stm32h7/rig-ref.signed.bin
      rig flash --board esp32-1 --offset 0x8000 partitions.bin
      rig flash --board esp32-1 0x1000=bootloader.bin 0x8000=partitions.bin 0x10000=app.bin
    """
    with held_board(rack, board_id, "flash", coordinator) as drivers:
        locked = drivers.preflight(rack, flashing_only=True)  # else a locked STM32 fails with a probe fault
        if locked:
            raise RigError(locked)
        layout = LAYOUTS[drivers.board.flash_layout]
        regions = _regions(images, layout, partition, offset, drivers.board.variant)
        total = sum(len(data) for _, data in regions)
        written = regions
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      console=out, transient=False) as bar:
            task = bar.add_task(f"{board_id}: {len(regions)} file(s)", total=total)

            def progress(done, of):
                bar.update(task, completed=done, total=of)

            if skip_unchanged:
                written = drivers.powered_flasher().differing(regions)
            if written:
                drivers.write_regions(written, verify=not no_verify, progress=progress)
            bar.update(task, completed=sum(len(data) for _, data in written), total=max(total, 1))
        if written and not no_reset and drivers.swd:
            # esptool already hard-reset an ESP32 into its app; pyocd leaves the core halted.
            drivers.target.activate(drivers.reset)
            drivers.reset.reset()
    checked = "written" if no_verify else "written and verified"
    for where, data in regions:
        state = checked if (where, data) in written else "unchanged, skipped"
        out.print(f"{board_id}: {len(data)} bytes {state} at 0x{where:x} ({drivers.flasher.__class__.__name__})")


def _regions(images, layout, partition, offset, variant) -> list[tuple[int, bytes]]:
    """[(offset, bytes)] from `FILE` or `OFFSET=FILE` arguments, checked against the layout."""
    if len(images) > 1 or "=" in images[0]:
        if partition or offset is not None:
            raise RigError("--partition and --offset place a single FILE; with several files give "
                           "each its OFFSET=FILE")
        pairs = []
        for arg in images:
            where, sep, name = arg.partition("=")
            if not sep:
                raise RigError(f"{arg}: with several files each needs its offset, e.g. 0x8000={arg}")
            try:
                pairs.append((int(where, 0), _read(name)))
            except ValueError:
                raise RigError(f"{arg}: {where!r} is not an offset; write e.g. 0x8000={name}") from None
        regions = sorted(pairs)
        for (a, da), (b, _) in zip(regions, regions[1:], strict=False):
            if a + len(da) > b:
                raise RigError(f"files at 0x{a:x} (0x{len(da):x} bytes) and 0x{b:x} overlap; check the offsets")
        return regions
    data = _read(images[0])
    where = offset if offset is not None else _partition_offset(layout, partition, variant, len(data))
    return [(where, data)]


def _read(name: str) -> bytes:
    path = Path(name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RigError(f"{path}: cannot read ({exc.strerror}); check the path") from None
    if not data:
        raise RigError(f"{path}: the file is empty; nothing to flash")
    return data


def _partition_offset(layout, name, variant, size) -> int:
    name = name or facts(variant).app_partition
    try:
        part = layout.part(name)
    except KeyError:
        names = ", ".join(p.name for p in layout.partitions)
        raise RigError(f"layout {layout.name} has no partition {name!r}; one of {names}") from None
    if size > part.size:
        raise RigError(f"the image is {size} bytes, partition {name} holds {part.size}; "
                       "check the image or pick a bigger partition")
    return part.offset
