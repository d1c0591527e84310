"""The STM32 provisioning recipe (STM32H743, STM32L073): identify, check, flash, identity, write it, lock, prove.

Both parts run the same steps; only the addresses differ (the part's rig.chips.stm32 record).
Everything goes through the board's SWD probe (PyOCDDriver) and console, so the recipe runs alike on
a real ST-LINK and on the virtual lab. The steps and the key area format are described in
docs/provisioning.md.

Recipe option, per variant (Station.options["stm32h7"] / ["stm32l0"]):
    rdp   1 (default): readout protection level 1, the flash locked against the debug port;
          0: leave the unit open (lab units, or to read the key area back).
          Level 2 is refused: it disables debug for good, and one wrong option would cost boards.
"""

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyocd.core.exceptions import TransferError

from rig.chips import stm32 as chips
from rig.drivers import optionbytes
from rig.drivers.strategy import BOOT_LINE, parse_boot_fields
from rig.errors import ConsoleTimeout, RigError
from rig.image import factory, mcuboot
from rig.provision import keyarea, steps
from rig.provision.recipe import Recipe, Refused, Step, Unit

OPTIONS = {"rdp": 1}  # the options this recipe reads, with their defaults
BOOT_TIMEOUT = 10.0  # seconds from a probe reset to the boot line (with a power switch: the strategy's)


@dataclass(frozen=True)
class Part:
    chip: chips.Chip  # the part the variant's firmware is built for: its IDs and where they are read
    # The L0 has no mass-erase command: its one whole-flash erase is the RDP 1 -> 0 regression, far
    # faster than erasing 1536 pages one by one. The H7 erases a bank with one command.
    erase_by_regression: bool


PARTS = {
    "stm32h7": Part(chips.STM32H743, erase_by_regression=False),
    "stm32l0": Part(chips.STM32L073, erase_by_regression=True),
}


def options(unit: Unit) -> dict:
    """The recipe options for the unit's variant, checked: one line naming what is wrong."""
    given = dict(unit.station.options.get(unit.board.variant) or {})
    unknown = sorted(set(given) - set(OPTIONS))
    if unknown:
        raise RigError(f"{unit.board.variant} recipe option {', '.join(unknown)} unknown; "
                       f"known: {', '.join(OPTIONS)}")
    merged = {**OPTIONS, **given}
    if merged["rdp"] == 2:
        raise RigError("recipe option rdp=2 refused: RDP level 2 disables debug for good; "
                       "use 1 (locked, recoverable) or 0 (open)")
    if merged["rdp"] not in (0, 1):
        raise RigError(f"recipe option rdp={merged['rdp']!r}: use 1 (locked) or 0 (open)")
    return merged


def identify(unit: Unit) -> dict:
    """The unique device ID and DBGMCU_IDCODE through the probe: readable under RDP level 1 too."""
    options(unit)  # a bad option fails the unit before anything is written to it
    variant, chip = unit.board.variant, PARTS[unit.board.variant].chip
    swd = unit.drivers.powered_probe()
    with swd.session() as session:
        low, mid, high = (session.target.read32(addr) for addr in chip.uid)
        idcode = session.target.read32(chip.idcode)
        rdp = optionbytes.read_level(session.target, variant)
    dev_id, rev_id = idcode & 0xFFF, idcode >> 16
    unit.record.chip_id = f"{high:08x}{mid:08x}{low:08x}"  # set first: a refused unit is recorded too
    if dev_id != chip.dev_id:
        raise Refused(f"DBGMCU_IDCODE says DEV_ID 0x{dev_id:03x}, not an {chip.name} (0x{chip.dev_id:03x}): "
                      f"wrong board on a {variant} fixture?")
    if rdp == 2:
        raise Refused("readout protection is at level 2: the part is locked for good and cannot be provisioned")
    return {"unique_id": unit.record.chip_id, "dev_id": f"0x{dev_id:03x}", "rev_id": f"0x{rev_id:04x}", "rdp": rdp}


def flash(unit: Unit) -> dict:
    """Erase the part (RDP back to level 0 first if locked), write MCUboot and the signed image; read back."""
    variant, drivers = unit.board.variant, unit.drivers
    firmware = unit.station.firmware.get(variant)
    if firmware is None:
        raise RigError(f"the station has no {variant} firmware; give it an image and a bootloader for {variant}")
    regions = factory.stm32_regions(variant, firmware.image, firmware.bootloader, layout=unit.board.flash_layout)
    swd = drivers.powered_probe()
    erase = _erase(unit, swd)
    # What the writes below do not cover must be gone: an old slot1 image's header, an old slot0
    # trailer's magic (MCUboot would act on either) and an old key area. Check a few bytes of each.
    layout, erased = swd.layout, bytes([swd.layout.geometry.erased]) * 16
    slot0 = layout.part("slot0")
    probes = [(layout.part("slot1").offset, erased), (slot0.offset + slot0.size - 16, erased),
              (layout.part("identity").offset, erased)]
    if swd.differing(probes):
        raise RigError("the flash is not blank after erasing; power-cycle the unit and run it again")
    drivers.write_regions([(r.offset, r.data) for r in regions], verify=True)
    written = {r.name: r.data for r in regions}
    unit.record.bootloader_sha256 = hashlib.sha256(written["mcuboot"]).hexdigest()
    unit.record.firmware_sha256 = hashlib.sha256(written["slot0"]).hexdigest()
    return {"erase": erase, "bootloader_bytes": len(written["mcuboot"]),
            "bootloader_sha256": unit.record.bootloader_sha256, "image_bytes": len(written["slot0"]),
            "firmware_sha256": unit.record.firmware_sha256,
            "image_version": str(mcuboot.parse(firmware.image).version)}


def _erase(unit: Unit, swd) -> str:
    """Erase the whole flash; how it was done, for the record."""
    locked = swd.read_rdp_level() == 1  # a unit stopped after its lock, or re-provisioned
    if not locked and not PARTS[unit.board.variant].erase_by_regression:
        swd.erase()
        return "mass erase"
    if not locked:
        swd.set_rdp_level(1)
    swd.set_rdp_level(0)  # the regression erases the whole flash, as the part does
    if swd.read_rdp_level() != 0:
        raise RigError("readout protection did not go back to level 0; power-cycle the unit and run it again")
    return "rdp regression" + (" (was locked)" if locked else "")


def write_identity(unit: Unit) -> dict:
    """The key area into the identity partition, compared on read-back; then the key leaves memory."""
    try:
        st, rec = unit.station, unit.record
        if unit.device_key is None or rec.serial is None or rec.certificate is None:
            raise RigError("no device key to write: the identity step must run first")
        swd = unit.drivers.powered_probe()
        where = swd.layout.part("identity")
        area = keyarea.encode(keyarea.KeyArea(
            serial=rec.serial,
            device_key=unit.device_key.private_numbers().private_value.to_bytes(32, "big"),
            device_cert=x509.load_pem_x509_certificate(rec.certificate.encode()).public_bytes(
                serialization.Encoding.DER),
            ca_cert=st.ca_cert.public_bytes(serialization.Encoding.DER),
            firmware_key=st.firmware_signers[unit.board.variant].public.key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        ), swd.layout.geometry)
        if len(area) > where.size:
            raise RigError(f"key area of {len(area)} bytes does not fit the {where.size}-byte identity partition")
        # The identity partition is a key area: the driver's verify error names the offset, no byte.
        unit.drivers.write_regions([(where.offset, area)], verify=True)
        return {"offset": f"0x{where.offset:x}", "bytes": len(area), "records": list(keyarea.TAG_NAMES.values())}
    finally:
        unit.forget_key()


def lock(unit: Unit) -> dict:
    """Readout protection at the level the recipe option asks for (1 by default)."""
    level = options(unit)["rdp"]
    if level:
        unit.drivers.powered_probe().set_rdp_level(level)
        unit.drivers.forget_state()  # the option-byte sequence halts the core (the L0's reloads and resets it)
    unit.record.lock_state = {"rdp": level}
    return {"rdp": level}


def prove_lock(unit: Unit) -> dict:
    """RDP as asked; under level 1 the probe's flash read refused; and the unit still boots its image."""
    wanted = options(unit)["rdp"]
    swd = unit.drivers.powered_probe()
    level = swd.read_rdp_level()
    if level != wanted:
        raise RigError(f"readout protection reads level {level} after locking to level {wanted}; run the unit again")
    refused = None
    if level:
        slot0 = swd.layout.part("slot0")
        try:
            swd.read(slot0.offset, 16)
        except RigError as exc:
            if not isinstance(exc.__cause__, TransferError):
                raise  # the probe failed for another reason: that proves nothing
            refused = True
        else:
            raise RigError("the probe still reads the flash under RDP level 1: the lock is not in force")
    boot = _boot(unit)
    expected = str(mcuboot.parse(unit.station.firmware[unit.board.variant].image).version)
    if boot.get("variant") != unit.board.variant or boot.get("version") != expected:
        raise RigError(f"after locking the unit boots {boot.get('variant')} {boot.get('version')}, not the "
                       f"factory image ({unit.board.variant} {expected})")
    return {"rdp": level, "readout_refused": refused, "boot_version": boot["version"], "boot_reset": boot.get("reset")}


def _boot(unit: Unit) -> dict:
    """Cold boot (power switch) or, without one, a reset through the probe; the boot line's fields."""
    drivers = unit.drivers
    try:
        if drivers.strategy is not None:
            return drivers.strategy.power_on_to_app()
        drivers.target.activate(drivers.console)
        drivers.powered_probe()
        drivers.target.activate(drivers.reset)
        drivers.reset.reset()  # through the probe, the console drained while the core is held
        match = drivers.console.expect_line(BOOT_LINE, timeout=BOOT_TIMEOUT)
        return parse_boot_fields(match.group("fields"))
    except ConsoleTimeout:  # the unit printed no boot line
        raise RigError("no boot line after power-on or reset: the unit does not boot its factory image after "
                       "locking; check MCUboot and the image (run it again with rdp=0 to look)") from None


STEPS = (
    Step("identify", identify, "96-bit unique ID, DEV_ID/REV_ID and RDP level through the probe; refuse another part"),
    steps.CHECK,
    Step("flash", flash, "RDP back to 0 if locked, erase, MCUboot and the signed image into slot0, read back"),
    steps.IDENTITY,
    Step("write_identity", write_identity, "the key area into the identity partition, read back; key dropped"),
    Step("lock", lock, "readout protection level 1 (recipe option rdp)"),
    Step("prove_lock", prove_lock, "RDP read back, flash readout refused, the unit boots its factory image"),
)

RECIPES = {variant: Recipe(variant, STEPS) for variant in PARTS}
