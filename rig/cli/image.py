"""`rig image info`: what is inside a signed image, without judging it (that is `rig verify`)."""

import json
from pathlib import Path

import click
from rich.table import Table

from rig.cli.console import out
from rig.cli.sign import IN_FILE, mcuboot_slot
from rig.errors import RigError
from rig.image import appdesc, mcuboot
from rig.image.layouts import VARIANTS


@click.group()
def image():
    """Inspect firmware images."""


@image.command(epilog="""\b
Examples:
  rig image info app-1.2.0.img
  rig image info --json --variant stm32l0 app-1.2.0-test.img""")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--variant", type=click.Choice(VARIANTS),
              help="Also decode rig's app descriptor and, for an image padded to the secondary slot, its trailer.")
@click.argument("path", metavar="IMAGE", type=IN_FILE)
def info(as_json, variant, path: Path):
    """Show an MCUboot image: header, version, payload range, TLVs, security counter.

    The structure is checked (bounds, magics) but not the hash or signature: use `rig verify`
    for that. ESP32 app images: use `esptool image-info` (rig reads MCUboot images here).
    """
    data = path.read_bytes()
    try:
        img = mcuboot.parse(data)
    except RigError as e:
        raise RigError(f"{path}: {e}") from None
    fields = img.to_dict()
    fields["file_size"] = len(data)
    if variant:
        trailer = mcuboot_slot(variant)[0]
        fields["app_descriptor"] = _descriptor(data, variant, img.header_size)
        if len(data) == trailer.slot_size:
            s = trailer.read(data)
            fields["trailer"] = {"magic": s.magic.value, "image_ok": s.image_ok.value,
                                 "copy_done": s.copy_done.value, "swap_type": s.swap_type.name.lower()}
    if as_json:
        out.print_json(json.dumps(fields))
        return
    head = Table(title=f"{path}: MCUboot image {img.version}", title_justify="left", show_header=False)
    for name in ("version", "header_size", "img_size", "protect_tlv_size", "load_addr", "flags", "payload",
                 "size", "file_size", "security_counter", "app_descriptor", "trailer"):
        if name in fields:
            value = fields[name]
            head.add_row(name, _show(value))
    out.print(head)
    tlvs = Table(title="TLVs", title_justify="left")
    for column in ("area", "type", "name", "offset", "len", "value"):
        tlvs.add_column(column)
    for area, items in (("protected", fields["protected_tlvs"]), ("unprotected", fields["tlvs"])):
        for t in items:
            value = t["value"] if len(t["value"]) <= 64 else t["value"][:64] + "..."
            tlvs.add_row(area, f"0x{t['type']:02x}", t["name"], str(t["offset"]), str(t["len"]), value)
    out.print(tlvs)


def _descriptor(data: bytes, variant: str, header_size: int) -> dict | str:
    try:
        d = appdesc.find(data, variant, header_size)
    except RigError as e:
        return f"none ({e})"
    return {"variant": d.variant, "version": d.version_str, "fault": d.fault, "name": d.name}


def _show(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, int) and not isinstance(value, bool) and value > 9:
        return f"{value} (0x{value:x})"
    return "-" if value is None else str(value)
