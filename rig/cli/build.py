"""`rig build`: the reference firmware for every variant and fault mode, reproducibly."""

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from rig import build as builder
from rig.build.defects import DEFECTS
from rig.cli.console import out
from rig.image.appdesc import FAULTS
from rig.image.keys import load_public_key
from rig.variants import NAMES


@click.command(epilog="""\b
Examples:
  rig build                                   # everything into build/firmware
  rig build --out /tmp/fw --variant stm32l0 --version 1.2.0
  rig build --variant esp32 --version 2.0.0 --secure-version 3
  SOURCE_DATE_EPOCH=1700000000 rig build      # the ESP32 app's compile date/time
  rig build --out /tmp/bad --defect confirm-not-persisted   # a broken firmware the suite must catch
  rig build --key key.pem                     # + rig-<variant>-mcuboot-virtual.bin trusting key.pem
  rig flash --board stm32l0-1 --partition mcuboot build/firmware/rig-stm32l0-mcuboot-virtual.bin""")
@click.option("--out", "out_dir", default=str(builder.DEFAULT_OUT), show_default=True, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path), help="Directory for the images and manifest.json.")
@click.option("--variant", "variants", multiple=True, type=click.Choice(NAMES),
              help="Build only this variant; repeat for several. Default: all.")
@click.option("--fault", "faults", multiple=True, type=click.Choice(FAULTS),
              help="Build only this fault mode; repeat for several. Default: all five.")
@click.option("--version", default=builder.DEFAULT_VERSION, show_default=True, metavar="X.Y.Z[+B]",
              help="Version written into the app descriptor (and esp_app_desc_t on the ESP32).")
@click.option("--secure-version", default=0, show_default=True, type=click.IntRange(0, 0xFFFF_FFFF),
              metavar="N", help="ESP32 anti-rollback secure_version in esp_app_desc_t.")
@click.option("--defect", type=click.Choice(list(DEFECTS)), default=None,
              help="Build the C firmware with this deliberate bug (STM32 variants): "
                   "rig-<variant>-<fault>.<defect>.bin. See docs/firmware.md.")
@click.option("--key", "keys", multiple=True, metavar="PEM|URI",
              help="A key the virtual STM32 boards' MCUboot trusts (PEM private or public key, or pkcs11: URI); "
                   "repeat for several. With it, each STM32 variant also gets rig-<variant>-mcuboot-virtual.bin "
                   "for its mcuboot partition, so a virtual board comes up from files with `rig flash` alone.")
def build(out_dir, variants, faults, version, secure_version, defect, keys):
    """Build the reference test firmware into DIR, with DIR/manifest.json.

    \b
    STM32H7 and STM32L0: the C application in firmware/, compiled with arm-none-eabi-gcc and
    newlib-nano, linked into the MCUboot primary slot behind a 0x200-byte header (addresses from
    rig/image/layouts.py). Each gives rig-<variant>-<fault>.elf and a raw .bin to sign with
    `rig sign`. ESP32: an ESP-IDF app image per fault mode made with esptool's image classes,
    plus rig-esp32-bootloader.bin for 0x1000.

    \b
    Fault modes make the bad firmware rollback tests need: none, crash-on-boot (hard fault and
    reset), hang (stops feeding the watchdog), no-confirm, fail-health. A defect is a bug update
    code has shipped with, compiled in (confirm-not-persisted, resume-wrong-offset,
    smp-match-always, confirm-before-health, watchdog-never-bites), so a test can prove it
    catches broken firmware.

    The same inputs give the same bytes: paths are stripped, the toolchain environment is fixed
    and SOURCE_DATE_EPOCH (default 0) stands in for the clock.
    """
    variants = variants or (builder.STM32_NAMES if defect else NAMES)
    faults = faults or FAULTS
    trusted = tuple(load_public_key(k) for k in keys)
    columns = (TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=out, transient=True) as progress:
        task = progress.add_task("building", total=builder.count(variants, faults))

        def step(label: str) -> None:
            progress.update(task, advance=1, description=label)

        result = builder.build(out_dir, variants, version, faults, secure_version, progress=step, defect=defect,
                               bootloader_keys=trusted)

    if result.sizes:
        table = Table(title="arm-none-eabi-size (fault mode none)", title_justify="left")
        for column in ("variant", "text", "data", "bss", "flash (text+data)", "RAM (data+bss)"):
            table.add_column(column, justify="left" if column == "variant" else "right")
        for variant, s in sorted(result.sizes.items()):
            table.add_row(variant, str(s["text"]), str(s["data"]), str(s["bss"]),
                          str(s["text"] + s["data"]), str(s["data"] + s["bss"]))
        out.print(table)
    images = Table(title=f"{len(result.artifacts)} images in {out_dir}", title_justify="left")
    for column in ("file", "variant", "fault", "size", "sha256"):
        images.add_column(column)
    for a in result.artifacts:
        images.add_row(a["file"], a["variant"], a["fault"] or a["kind"], str(a["size"]), a["sha256"][:16])
    out.print(images)
    out.print(f"manifest: {result.manifest}")
