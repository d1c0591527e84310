"""`rig image info`: what is inside a signed image, without judging it (that is `rig verify`)."""

import json
import struct
from pathlib import Path

import click
from rich.table import Table

from rig.cli.console import out
from rig.cli.sign import ESP_IMAGE_MAGIC, IN_FILE, mcuboot_slot
from rig.errors import RigError
from rig.image import appdesc, esp_app, mcuboot, sbv2
from rig.variants import NAMES


@click.group()
def image():
    """Inspect firmware images."""


@image.command(epilog="""\b
Examples:
  rig image info app-1.2.0.img
  rig image info --json --variant stm32l0 app-1.2.0-test.img
  rig image info esp32-app-signed.bin""")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--variant", type=click.Choice(NAMES),
              help="MCUboot images: also decode rig's app descriptor and, for an image padded to the "
                   "secondary slot, its trailer.")
@click.argument("path", metavar="IMAGE", type=IN_FILE)
def info(as_json, variant, path: Path):
    """Show what IMAGE holds.

    \b
    MCUboot images (STM32): header, version, payload range, TLVs, security counter.
    ESP32 app images: esp_app_desc_t (version, secure_version), rig's app descriptor, and the
      Secure Boot V2 signature blocks when the image is signed.
    The structure is checked (bounds, magics, the ESP32 app's checksum and digest) but not the
    MCUboot hash or any signature: `rig verify` does that against trusted keys.
    """
    data = path.read_bytes()
    try:
        if data[:4] == struct.pack("<I", mcuboot.IMAGE_MAGIC):
            fields = _mcuboot(data, variant)
        elif data[:1] == bytes([ESP_IMAGE_MAGIC]):
            fields = _esp(data)
        else:
            raise RigError("neither an MCUboot image (magic 0x96f3b83d) nor an ESP32 app image (0xE9)")
    except RigError as e:
        raise RigError(f"{path}: {e}") from None
    fields["file_size"] = len(data)
    if as_json:
        out.print_json(json.dumps(fields))
        return
    head = Table(title=f"{path}: {fields['format']} image {fields['version']}", title_justify="left",
                 show_header=False)
    for name, value in fields.items():
        if name not in ("format", "protected_tlvs", "tlvs", "secure_boot_v2"):
            head.add_row(name, _show(value))
    out.print(head)
    if fields["format"] == "mcuboot":
        _print_tlvs(fields)
    else:
        _print_blocks(fields["secure_boot_v2"])


def _mcuboot(data: bytes, variant: str | None) -> dict:
    img = mcuboot.parse(data)
    fields = img.to_dict()
    if variant:
        trailer = mcuboot_slot(variant)[0]
        try:
            fields["app_descriptor"] = _descriptor(appdesc.find(data, variant, img.header_size))
        except RigError as e:
            fields["app_descriptor"] = f"none ({e})"
        if len(data) == trailer.slot_size:
            s = trailer.read(data)
            fields["trailer"] = {"magic": s.magic.value, "image_ok": s.image_ok.value,
                                 "copy_done": s.copy_done.value, "swap_type": s.swap_type.name.lower()}
    return fields


def _esp(data: bytes) -> dict:
    app = esp_app.parse(data)
    try:
        blocks = [{"index": b.index, "kind": b.kind, "key_digest": b.key_digest.hex(), "image_digest": b.digest.hex()}
                  for b in sbv2.parse(data)[1]]
    except RigError:
        blocks = []  # no whole signature sector: an unsigned app
    return {"format": "esp32-app", "version": app.version, "project": app.project,
            "secure_version": app.secure_version, "idf_ver": app.idf_ver, "entry": app.entry,
            "segments": app.segments, "size": app.size,
            "app_descriptor": _descriptor(app.descriptor) if app.descriptor else "none",
            "secure_boot_v2": blocks}


def _descriptor(d: appdesc.AppDescriptor) -> dict:
    return {"variant": d.variant, "version": d.version_str, "fault": d.fault, "name": d.name}


def _print_tlvs(fields: dict) -> None:
    tlvs = Table(title="TLVs", title_justify="left")
    for column in ("area", "type", "name", "offset", "len", "value"):
        tlvs.add_column(column)
    for area, items in (("protected", fields["protected_tlvs"]), ("unprotected", fields["tlvs"])):
        for t in items:
            value = t["value"] if len(t["value"]) <= 64 else t["value"][:64] + "..."
            tlvs.add_row(area, f"0x{t['type']:02x}", t["name"], str(t["offset"]), str(t["len"]), value)
    out.print(tlvs)


def _print_blocks(blocks: list[dict]) -> None:
    if not blocks:
        out.print("Secure Boot V2: not signed")
        return
    table = Table(title="Secure Boot V2 signature blocks", title_justify="left")
    for column in ("block", "scheme", "key digest (eFuse)", "image digest"):
        table.add_column(column)
    for b in blocks:
        table.add_row(str(b["index"]), b["kind"], b["key_digest"], b["image_digest"])
    out.print(table)


def _show(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    if isinstance(value, int) and not isinstance(value, bool) and value > 9:
        return f"{value} (0x{value:x})"
    return "-" if value is None else str(value)
