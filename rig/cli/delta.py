"""`rig delta make|apply|info`: delta patches between firmware images."""

import json
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from rig import atomic
from rig import delta as rdelta
from rig.cli.console import out
from rig.errors import RigError

_FILE = click.Path(dir_okay=False, path_type=Path)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RigError(f"cannot read {what} {path}: {exc.strerror}") from None


@click.group()
def delta():
    """Delta updates: a small device rebuilds a new image from its running one plus a patch.

    \b
    Profiles (the codec the device decodes):
      p1  LZSS, 256-byte window: ~0.5 KiB RAM, for STM32L0
      p2  LZMA1, 4 KiB dictionary: ~11 KiB RAM, smaller patches, for STM32H7 and ESP32
    What make writes is always a container the device's applier takes: a patch, or the new image
    compressed when that is smaller. Every container is applied and checked before it is written.
    Format: docs/delta-format.md.
    """


@delta.command()
@click.option("--profile", type=click.Choice(["p1", "p2"]), default="p2", show_default=True,
              help="Codec the receiving device decodes (p1 STM32L0, p2 STM32H7/ESP32).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.argument("old", type=_FILE)
@click.argument("new", type=_FILE)
@click.argument("patch", type=_FILE)
def make(profile, as_json, old, new, patch):
    """Write PATCH, which turns image OLD into image NEW.

    PATCH is whichever is smaller on the wire: the patch from OLD to NEW (kind "patch"), or NEW
    itself compressed with the profile's codec (kind "full": it applies whatever the device
    runs, with the same applier and RAM). When most of the code moved, or OLD is another product's
    image, the patch can lose to the full image. Examples:

    \b
      rig delta make --profile p1 app-1.0.bin app-1.1.bin app-1.0-1.1.rdlt
      rig delta make --json app-1.0.bin app-1.1.bin app-1.0-1.1.rdlt   # kind and both sizes
    """
    result = rdelta.make(_read(old, "old image"), _read(new, "new image"), profile)
    atomic.write_bytes(patch, result.data)
    summary = {"kind": result.kind, "profile": profile, "written": str(patch), "written_size": len(result.data),
               "patch_size": result.patch_size, "full_size": result.full_size, "new_size": result.new_size}
    if as_json:
        out.print_json(json.dumps(summary))
    elif result.kind == "patch":
        out.print(f"{patch}: {profile} patch, {result.patch_size} bytes ({100 * result.ratio:.1f} % of the "
                  f"{result.full_size}-byte full image)", markup=False)
    else:
        out.print(f"{patch}: {profile} full image, {result.full_size} bytes (the {result.new_size}-byte image "
                  f"compressed; the patch would be {result.patch_size} bytes)", markup=False)


@delta.command()
@click.option("--native", is_flag=True, help="Use the device's C applier (firmware/lib) instead of Python.")
@click.argument("old", type=_FILE)
@click.argument("patch", type=_FILE)
@click.argument("out_path", metavar="OUT", type=_FILE)
def apply(native, old, patch, out_path):
    """Rebuild the new image from OLD and PATCH into OUT.

    A corrupt or truncated container, or an OLD that is not the patch's source image, is refused
    with one line and exit status 2; OUT is then left untouched. A full-image container does not
    read OLD.
    """
    old_data, patch_data = _read(old, "old image"), _read(patch, "patch")
    if native:
        from rig.delta import native as applier

        new = applier.apply(old_data, patch_data)
    else:
        new = rdelta.apply(old_data, patch_data)
    atomic.write_bytes(out_path, new)
    out.print(f"{out_path}: {len(new)} bytes, SHA-256 verified", markup=False)


@delta.command()
@click.option("--json", "as_json", is_flag=True, help="Print the header as JSON.")
@click.argument("patch", type=_FILE)
def info(as_json, patch):
    """Show what a container's header says (after checking its CRCs): kind patch or full, sizes, hashes."""
    fields = rdelta.info(_read(patch, "patch"))
    if as_json:
        out.print_json(json.dumps(fields))
        return
    table = Table(title=escape(str(patch)), title_justify="left", show_header=False)
    for key, value in fields.items():
        table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    out.print(table)
