"""The ESP32 recipe: identify, check, flash, identity, write the identity into NVS, lock, prove the lock.

Everything goes through the board's serial port as on a production line: esptool's ROM loader
(rig.drivers.espflash) for the MAC, flash and read-back, espefuse over the same loader session
for eFuses, and the console for what the chip prints when it boots. One ROM-loader session
serves identify through lock (opened by identify, kept in `unit.held`): the chip is reset into
download mode, synced and given esptool's stub once per unit, not once per step; prove_lock
ends it and proves the lock in a fresh session after a reset.

Options (Station.options["esp32"]; docs/provisioning.md, "ESP32 recipe options"):

    disable_jtag      (True)   burn JTAG_DISABLE
    disable_download  (False)  burn UART_DOWNLOAD_DIS: the ROM loader stops answering for good, so the
                               unit can never be identified or re-provisioned over serial again
    secure_version    (the factory app's own)  the anti-rollback floor to burn (SECURE_VERSION)
    flash_encryption  (True)   flash encryption in release mode and NVS encryption of the identity: a
                               key per unit (never kept) encrypts the bootloader, partition table, app
                               and nvs_keys as espsecure would, NVS keys encrypt the identity, and
                               the lock burns the key (read/write-protected), FLASH_CRYPT_CONFIG,
                               FLASH_CRYPT_CNT (then write-protected) and DISABLE_DL_ENCRYPT/
                               DECRYPT/CACHE. Such a unit cannot be provisioned again over serial:
                               nobody holds its key

Re-running a unit is safe at every point: the flash is rewritten whole whatever it held, and the lock
burns only what is not burnt yet (an eFuse already holding the wanted value is left alone); a value
burnt that conflicts with this station's (another key's digest, a floor above the factory app's)
fails the unit before anything is written.
"""

import hashlib
import io

from cryptography.hazmat.primitives import serialization

from rig.drivers.console import first_line
from rig.errors import ConsoleTimeout, RigError
from rig.image import esp_app, factory, flash_crypt, sbv2
from rig.image.layouts import LAYOUTS
from rig.provision.recipe import Recipe, Step, Unit
from rig.provision.steps import CHECK, IDENTITY

OPTIONS = {"disable_jtag": True, "disable_download": False, "secure_version": None, "flash_encryption": True}
NAMESPACE = "identity"  # the NVS namespace the app opens in the `identity` partition
# eFuse fields the lock burns and the record keeps (espefuse's names, ESP32).
LOCK_FIELDS = ("BLOCK2", "WR_DIS", "ABS_DONE_1", "SECURE_VERSION", "JTAG_DISABLE", "UART_DOWNLOAD_DIS",
               "FLASH_CRYPT_CNT", "FLASH_CRYPT_CONFIG", "DISABLE_DL_ENCRYPT", "DISABLE_DL_DECRYPT", "DISABLE_DL_CACHE")
# What release mode burns besides the key and FLASH_CRYPT_CNT (ESP-IDF flash_encrypt.c, esp32).
RELEASE_MODE = {"FLASH_CRYPT_CONFIG": str(flash_crypt.RELEASE_CONFIG), "DISABLE_DL_ENCRYPT": "1",
                "DISABLE_DL_DECRYPT": "1", "DISABLE_DL_CACHE": "1"}
FLASH_KEY, NVS_KEYS = "flash_key", "nvs_keys"  # in unit.scratch from flash to lock, never recorded
DOWNLOAD_BANNER = r"boot:0x[0-9a-f]+ \(DOWNLOAD_BOOT"  # the ROM's first line when reset with GPIO0 low
DOWNLOAD_READY = "waiting for download"  # ... and its next one, unless UART_DOWNLOAD_DIS is burnt
SIGNATURE_OK = r"secure_boot_v2: Signature verified successfully!"
BOOT_LINE = r"rig: boot (?P<fields>[^\r\n]*)"  # docs/console.md
BOOT_TIMEOUT = 10.0
DOWNLOAD_DISABLED = ("download mode is disabled on this unit (eFuse UART_DOWNLOAD_DIS): its ROM prints the "
                     "download banner but never answers esptool, so it cannot be identified or provisioned "
                     "over serial")


def options(unit: Unit) -> dict:
    given = unit.station.options.get("esp32", {})
    unknown = sorted(set(given) - set(OPTIONS))
    if unknown:
        raise RigError(f"esp32 recipe options: {', '.join(unknown)} unknown; known: {', '.join(OPTIONS)}")
    merged = {**OPTIONS, **given}
    for name in ("disable_jtag", "disable_download", "flash_encryption"):
        if not isinstance(merged[name], bool):
            raise RigError(f"esp32 option {name}={merged[name]!r}: give true or false")
    return merged


def _firmware(unit: Unit):
    firmware = unit.station.firmware.get("esp32")
    if firmware is None:
        raise RigError("the station has no esp32 firmware; give it a signed factory app and bootloader")
    return firmware


def _secure_version(unit: Unit) -> int:
    """The floor to burn: the option, else the factory app's own; never above the app's (it would not boot)."""
    app = esp_app.parse(_firmware(unit).image).secure_version
    wanted = options(unit)["secure_version"]
    if wanted is None:
        return app
    if isinstance(wanted, str) and wanted.isdigit():  # as `rig provision run --option esp32.secure_version=N` gives it
        wanted = int(wanted)
    if not isinstance(wanted, int) or not 0 <= wanted <= 32:
        raise RigError(f"esp32 option secure_version={wanted!r}: give an integer 0..32")
    if wanted > app:
        raise RigError(f"esp32 option secure_version={wanted} is above the factory app's secure_version {app}: "
                       "the bootloader would refuse to boot it; sign an app with a higher secure_version")
    return wanted


def _firmware_key(unit: Unit):
    """The public key of the station's firmware signer for this unit (RSA-3072: rig.variants)."""
    return unit.station.firmware_signers[unit.board.variant].public


def _digest(unit: Unit) -> bytes:
    return sbv2.key_digest(_firmware_key(unit))


# -- eFuses, through espefuse on an open ROM-loader session
def _commands(esp):
    from espefuse import init_commands

    try:
        return init_commands(esp=esp, do_not_confirm=True)
    except (KeyError, ValueError, AttributeError) as exc:
        raise RigError(f"espefuse: {first_line(exc)}") from exc


def _state(efuses) -> dict:
    """The lock's fields as read from the chip: BLOCK2 as hex, flags as bools, words as ints."""
    state = {name: efuses[name].get() for name in LOCK_FIELDS}
    state["BLOCK2"] = state["BLOCK2"].replace(" ", "")
    state["BLOCK2_WRITE_PROTECTED"] = not efuses["BLOCK2"].is_writeable()
    state["BLOCK1_READ_PROTECTED"] = not efuses["BLOCK1"].is_readable()  # the flash encryption key
    state["FLASH_CRYPT_CNT_WRITE_PROTECTED"] = not efuses["FLASH_CRYPT_CNT"].is_writeable()
    state["FLASH_ENCRYPTED"] = bin(state["FLASH_CRYPT_CNT"]).count("1") % 2 == 1  # an odd count: on
    return state


def _floor(state: dict) -> int:
    """The anti-rollback floor the bootloader reads: the number of SECURE_VERSION bits burnt."""
    return bin(state["SECURE_VERSION"]).count("1")


def _conflict(state: dict, digest: bytes, secure_version: int) -> str | None:
    """What burnt already makes this unit unfit for this station's firmware, or None."""
    if state["FLASH_ENCRYPTED"] or state["BLOCK1_READ_PROTECTED"]:
        odd = ", FLASH_CRYPT_CNT odd" if state["FLASH_ENCRYPTED"] else ""
        return (f"flash encryption key burnt already (eFuse BLOCK1 read-protected{odd}): nobody holds that key, "
                "so no image can be written for this unit over serial again; put it aside")
    if int(state["BLOCK2"], 16) and state["BLOCK2"] != digest.hex():
        return (f"eFuse BLOCK2 holds another key's Secure Boot digest ({state['BLOCK2'][:16]}...), not this "
                f"station's firmware key's ({digest.hex()[:16]}...): the unit boots only images signed with "
                "that key; put it aside")
    if _floor(state) > secure_version:
        return (f"eFuse SECURE_VERSION floor {_floor(state)} is above the factory app's secure_version "
                f"{secure_version}: the bootloader would refuse the app; sign one with a higher secure_version")
    return None


def _expect(console, pattern: str, timeout: float = BOOT_TIMEOUT):
    return console.expect_line(pattern, timeout=timeout)  # ConsoleTimeout quotes what the board printed


def _download_refused(drivers) -> bool:
    """True when the ROM, reset with GPIO0 low (esptool's classic DTR/RTS sequence), prints its
    download-boot banner but never `waiting for download`: UART_DOWNLOAD_DIS is burnt. False when
    it prints nothing (no power, no console) or does wait for the loader."""
    from esptool.reset import ClassicReset

    console = drivers.console
    with console.lent() as port:
        ClassicReset(port)()
    try:
        console.expect_line(DOWNLOAD_BANNER, timeout=2.0)
    except ConsoleTimeout:
        return False
    try:
        console.expect_line(DOWNLOAD_READY, timeout=1.0)
    except ConsoleTimeout:
        return True
    return False


# -- the steps
def identify(unit: Unit) -> dict:
    """The factory MAC (chip id), the chip, and the eFuses the lock would touch."""
    floor = _secure_version(unit)  # options and firmware checked before the board is touched
    drivers = unit.drivers
    esptool = drivers.powered_rom_loader()
    drivers.forget_state()
    try:
        unit.held.enter_context(esptool.session())  # for this step and the next ones, to lock
        with esptool.loader() as esp:  # the session's connection; esptool errors become RigErrors
            mac = bytes(esp.read_mac())
            chip = esp.get_chip_description()
            state = _state(_commands(esp).efuses)
    except RigError:
        if _download_refused(drivers):
            raise RigError(DOWNLOAD_DISABLED) from None
        raise
    unit.record.chip_id = mac.hex()
    problem = _conflict(state, _digest(unit), floor)
    if problem:
        raise RigError(problem)
    return {"chip_id": unit.record.chip_id, "mac": mac.hex(":"), "chip": chip,
            "secure_boot": state["ABS_DONE_1"], "key_digest_burnt": bool(int(state["BLOCK2"], 16)),
            "secure_version_floor": _floor(state), "jtag_disabled": state["JTAG_DISABLE"]}


def flash(unit: Unit) -> dict:
    """The factory image over the whole flash - bootloader, partition table, otadata, signed app,
    0xFF everywhere else - in one esptool write; the chip's MD5 of all of it must match."""
    firmware = _firmware(unit)
    layout = LAYOUTS[unit.board.flash_layout]
    regions = factory.esp32_regions(firmware.image, firmware.bootloader, layout.name)
    # Writing the gaps as 0xFF is the erase: whatever the flash held (an old identity, a half-written
    # image, noise) goes, without esptool's erase commands, which refuse a chip with Secure Boot on
    # (a re-provisioned unit). The MD5 read-back then covers the erased parts too.
    if options(unit)["flash_encryption"]:
        regions = _encrypt(unit, regions, layout)
    image = factory.merge(regions, layout, full=True)
    unit.drivers.write_regions([(image.offset, image.data)], verify=True)
    rec = unit.record
    rec.firmware_sha256 = hashlib.sha256(firmware.image).hexdigest()
    rec.bootloader_sha256 = hashlib.sha256(firmware.bootloader).hexdigest()
    measured = {"flash_bytes": len(image.data), "flash_sha256": hashlib.sha256(image.data).hexdigest()}
    for r in regions:
        measured[f"{r.name}_offset"] = r.offset
        measured[f"{r.name}_bytes"] = len(r.data)
        measured[f"{r.name}_sha256"] = hashlib.sha256(r.data).hexdigest()
    return measured


def _encrypt(unit: Unit, regions: list, layout) -> list:
    """The regions as the chip must find them with flash encryption on: the bootloader, table and
    app encrypted with a new per-unit key, plus the nvs_keys partition (new NVS keys, encrypted
    too); otadata stays plaintext. The keys stay in the unit's memory until the lock burns them."""
    key = unit.scratch[FLASH_KEY] = flash_crypt.new_key()
    nvs_keys = unit.scratch[NVS_KEYS] = flash_crypt.new_key() + flash_crypt.new_key()
    part = layout.part("nvs_keys")
    plain = [*regions, factory.Region("nvs_keys", part.offset, flash_crypt.nvs_keys_image(nvs_keys))]
    return [factory.Region(r.name, r.offset, flash_crypt.encrypt(key, r.offset, _pad32(r.data)))
            if r.name != "otadata" else r for r in plain]


def _pad32(data: bytes) -> bytes:
    return data + b"\xff" * (-len(data) % 32)


def nvs_identity(entries: list[tuple[str, str | bytes]], size: int, keys: bytes | None = None) -> bytes:
    """An NVS partition image (format version 2) of one namespace, made in memory by Espressif's
    NVS partition generator; a str value is an NVS string, bytes a blob. With `keys` (64 bytes),
    NVS-encrypted as the generator's `encrypt` command does."""
    from esp_idf_nvs_partition_gen import nvs_partition_gen as gen

    out = io.BytesIO()
    # As the generator's CLI (check_size): the last page stays free for NVS's own compaction.
    nvs = gen.nvs_open(out, size - gen.Page.PAGE_PARAMS["max_size"], gen.Page.VERSION2,
                       is_encrypt=keys is not None, key=keys)
    try:
        gen.write_entry(nvs, NAMESPACE, "namespace", "", None)
        for key, value in entries:
            gen.write_entry(nvs, key, "data", "string" if isinstance(value, str) else "binary", value)
        gen.nvs_close(nvs)
    except (gen.InputError, gen.InsufficientSizeError) as exc:
        raise RigError(f"NVS identity image: {first_line(exc)}") from None
    return out.getvalue()


def _der(cert_pem: str) -> bytes:
    from cryptography import x509

    return x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(serialization.Encoding.DER)


def write_identity(unit: Unit) -> dict:
    """The serial, device key and certificate, the CA certificate and the firmware key, as NVS in
    the `identity` partition; then the station forgets the device key."""
    rec, station = unit.record, unit.station
    if unit.device_key is None or rec.serial is None or rec.certificate is None:
        raise RigError("no device key to write: the identity step must run before write_identity")
    part = LAYOUTS[unit.board.flash_layout].part("identity")
    der = serialization.Encoding.DER
    cert = _der(rec.certificate)
    ca = station.ca_cert.public_bytes(der)
    fw_key = _firmware_key(unit).key.public_bytes(der, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        device_key = unit.device_key.private_bytes(der, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption())
        image = nvs_identity([("serial", rec.serial), ("device_key", device_key), ("device_cert", cert),
                              ("ca_cert", ca), ("fw_pubkey", fw_key)], part.size, unit.scratch.get(NVS_KEYS))
        unit.drivers.flash(image, part.offset, verify=True)
    finally:
        unit.forget_key()
        unit.scratch.pop(NVS_KEYS, None)  # on the unit now, in its flash-encrypted nvs_keys partition
    # A hash of the whole partition reveals nothing of the key inside it.
    return {"identity_offset": part.offset, "identity_bytes": len(image),
            "identity_sha256": hashlib.sha256(image).hexdigest(), "device_cert_bytes": len(cert),
            "ca_cert_bytes": len(ca), "fw_pubkey_bytes": len(fw_key)}


def lock(unit: Unit) -> dict:
    """Burn the Secure Boot V2 key digest (write-protected), ABS_DONE_1, the secure version, with
    flash encryption the unit's key and release mode's eFuses and, as the options say,
    JTAG_DISABLE and UART_DOWNLOAD_DIS - each only if not burnt yet."""
    opts = options(unit)
    digest, floor = _digest(unit), _secure_version(unit)
    public_pem = _firmware_key(unit).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    drivers = unit.drivers
    esptool = drivers.powered_rom_loader()
    drivers.forget_state()
    burnt = []
    with esptool.loader(after="no-reset") as esp:
        cmds = _commands(esp)
        state = _state(cmds.efuses)
        problem = _conflict(state, digest, floor)
        if problem:
            raise RigError(problem)
        if state["BLOCK2"] != digest.hex():
            cmds.burn_key_digest(io.BytesIO(public_pem))  # espefuse burn-key-digest: burns, then write-protects
            burnt.append("BLOCK2")
        elif not state["BLOCK2_WRITE_PROTECTED"]:  # a lock cut between the digest and its protection
            cmds.efuses["BLOCK2"].disable_write()
            cmds.efuses.burn_all(check_batch_mode=True)
            burnt.append("WR_DIS")
        flags: dict[str, str] = {}
        key = unit.scratch.pop(FLASH_KEY, None)
        if key is not None:  # the key this unit's images were encrypted with: burnt, then forgotten
            cmds.burn_key(["flash_encryption"], [io.BytesIO(key)])  # read- and write-protected, as espefuse does
            del key
            burnt.append("BLOCK1")
            flags.update(RELEASE_MODE, FLASH_CRYPT_CNT="1")
        if not state["ABS_DONE_1"]:
            flags["ABS_DONE_1"] = "1"
        if _floor(state) < floor:  # thermometer code, as esp_efuse_update_secure_version() burns it
            flags["SECURE_VERSION"] = str(state["SECURE_VERSION"] | (1 << floor) - 1)
        if opts["disable_jtag"] and not state["JTAG_DISABLE"]:
            flags["JTAG_DISABLE"] = "1"
        if opts["disable_download"] and not state["UART_DOWNLOAD_DIS"]:
            # Last of the batch: from the next reset on, no esptool session reaches this chip
            # again. Before FLASH_CRYPT_CNT's write protection below: on the ESP32 one WR_DIS
            # bit (2) guards both, so afterwards this bit can never be burnt.
            flags["UART_DOWNLOAD_DIS"] = "1"
        if flags:
            cmds.burn_efuse(flags)
            burnt.extend(flags)
        if "FLASH_CRYPT_CNT" in flags:  # release mode: encryption can never be switched off again
            cmds.efuses["FLASH_CRYPT_CNT"].disable_write()
            cmds.efuses.burn_all(check_batch_mode=True)
        unit.record.lock_state = _state(_commands(esp).efuses)  # read back from the chip
    _check_in_force(unit, unit.record.lock_state)
    return {"burnt": burnt, **{f"efuse_{k}": v for k, v in unit.record.lock_state.items()}}


def _check_in_force(unit: Unit, state: dict) -> None:
    opts = options(unit)
    wanted = {"BLOCK2": _digest(unit).hex(), "BLOCK2_WRITE_PROTECTED": True, "ABS_DONE_1": True}
    if opts["disable_jtag"]:
        wanted["JTAG_DISABLE"] = True
    if opts["disable_download"]:
        wanted["UART_DOWNLOAD_DIS"] = True
    if opts["flash_encryption"]:
        wanted.update({name: True for name in ("BLOCK1_READ_PROTECTED", "FLASH_CRYPT_CNT_WRITE_PROTECTED",
                                               "DISABLE_DL_ENCRYPT", "DISABLE_DL_DECRYPT", "DISABLE_DL_CACHE")},
                      FLASH_CRYPT_CONFIG=flash_crypt.RELEASE_CONFIG)
        wanted["FLASH_ENCRYPTED"] = True
    missing = [f"{name}={state.get(name)!r}" for name, value in wanted.items() if state.get(name) != value]
    if _floor(state) < _secure_version(unit):
        missing.append(f"SECURE_VERSION floor {_floor(state)}")
    if missing:
        raise RigError(f"eFuses read back not locked: {', '.join(missing)}; the burn did not take - check "
                       "the unit's supply and put it aside")


def prove_lock(unit: Unit) -> dict:
    """Read the eFuses back in a fresh session (with download mode disabled: prove that esptool no
    longer reaches the ROM loader), then watch the chip boot: the bootloader must verify the app's
    Secure Boot V2 signature against the burnt digest and start it."""
    unit.release()  # the session of the steps before: the proof needs a reset and a session of its own
    drivers = unit.drivers
    esptool = drivers.powered_rom_loader()
    drivers.forget_state()
    console = drivers.console
    measured: dict[str, object] = {}
    if options(unit)["disable_download"]:
        try:
            with esptool.loader():
                pass
        except RigError:
            pass
        else:
            raise RigError("esptool still reaches the ROM loader although UART_DOWNLOAD_DIS reads back burnt")
        if not _download_refused(drivers):
            raise RigError("esptool cannot reach the ROM loader, but the ROM does not print its download "
                           "banner either: check the unit's power and console")
        measured["download_refused"] = True
        drivers.target.activate(drivers.reset)
        drivers.reset.reset()  # EN pulse with GPIO0 high: boot from flash
    else:
        with esptool.loader() as esp:  # hard reset after: the chip boots from flash at once
            state = _state(_commands(esp).efuses)
        _check_in_force(unit, state)
        measured["efuses_read_back"] = True
    _expect(console, SIGNATURE_OK)
    fields = dict(pair.split("=", 1) for pair in _expect(console, BOOT_LINE).group("fields").split() if "=" in pair)
    measured.update(signature_verified=True, booted_version=fields.get("version"), booted_slot=fields.get("slot"))
    return measured


RECIPES = {"esp32": Recipe("esp32", (
    Step("identify", identify, "factory MAC through esptool; eFuses must not conflict with this station's"),
    CHECK,
    Step("flash", flash, "whole flash: bootloader, partition table, otadata, signed app, erased rest; MD5 read-back"),
    IDENTITY,
    Step("write_identity", write_identity, "NVS identity partition (key, certificates, fw key); key forgotten"),
    Step("lock", lock, "Secure Boot V2 digest, ABS_DONE_1, secure version, JTAG/download per options"),
    Step("prove_lock", prove_lock, "eFuses read back in force; the chip boots only after verifying the app"),
))}
