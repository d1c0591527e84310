"""A provisioning station built from `rig provision run`'s options: keys, CA, firmware, recipe options.

The work folder (--workdir, default .rig/provision/ in the checkout) keeps what the station makes on
first use, so every run of one station signs with the same keys:

    ca-key.pem          the provisioning CA's key (unless --ca-key names one, e.g. on an HSM)
    ca/<KEYHASH>.pem    the CA certificate of that CA key, self-signed from it on first use
    firmware-key.pem    the firmware-signing key (EC P-256) of the boards whose boot chain verifies
                        that kind (MCUboot on the STM32s), unless a --firmware-key of a kind they
                        verify is given; a device's bootloader and firmware-verification key trust it
    firmware-key-rsa-3072.pem   the same for the ESP32, whose Secure Boot V2 verifies RSA-3072 only
    station.log         the station's log: one line per unit, tracebacks of unexpected failures
    provisioning.db     the records, when --db names no other database

A StationSpec is what a fixture process rebuilds the Station from: paths, URIs and firmware bytes,
never an open key or database connection (neither crosses a process boundary).
"""

from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from rig.atomic import write_bytes
from rig.errors import RigError
from rig.image.keys import ECDSA_P256, KINDS, load_signer, make_pem
from rig.provision import identity, variants
from rig.provision.records import Records
from rig.provision.station import Firmware, Station
from rig.variants import NAMES, Bootloader, facts

DEFAULT_WORKDIR = Path(".rig/provision")
FACTORY_VERSION = "1.0.0"  # of the default factory images (rig.ota.releases)
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def default_db(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'provisioning.db'}"


@dataclass(frozen=True)
class StationSpec:
    name: str
    operator: str
    db_url: str
    ca_key: str  # PEM path or pkcs11: URI
    ca_cert: str  # PEM path
    firmware_keys: dict[str, str]  # variant -> its firmware-signing key: PEM path or pkcs11: URI
    firmware: dict[str, Firmware]
    log: str  # the station log file
    force: bool = False
    options: dict = field(default_factory=dict)

    def open(self) -> Station:
        ca_signer = load_signer(self.ca_key)
        signers = {spec: load_signer(spec) for spec in set(self.firmware_keys.values())}
        return Station(
            name=self.name, operator=self.operator, records=Records(self.db_url),
            ca_cert=x509.load_pem_x509_certificate(Path(self.ca_cert).read_bytes()), ca_signer=ca_signer,
            keys=identity.key_maker(self.ca_key),
            firmware_signers={v: signers[spec] for v, spec in self.firmware_keys.items()},
            firmware=self.firmware, force=self.force, options=self.options)


# -- checks of the options, before anything is written


def parse_options(specs) -> dict[str, dict]:
    """--option VARIANT.NAME=VALUE, checked against the options the variant's recipe reads."""
    chosen: dict[str, dict] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        variant, dot, key = name.partition(".")
        if not (sep and dot and key):
            raise RigError(f"--option {spec!r}: write VARIANT.NAME=VALUE, e.g. stm32h7.rdp=0")
        known = variants.options(variant)
        if key not in known:
            names = ", ".join(f"{k} (default {v})" for k, v in known.items())
            raise RigError(f"--option {spec!r}: the {variant} recipe has no option {key!r}; it has {names}")
        chosen.setdefault(variant, {})[key] = _value(spec, text, known[key])
    return chosen


def _value(spec: str, text: str, default):
    if isinstance(default, bool):
        if text.lower() in TRUE + FALSE:
            return text.lower() in TRUE
        raise RigError(f"--option {spec!r}: expected true or false")
    if isinstance(default, int):
        try:
            return int(text, 0)
        except ValueError:
            raise RigError(f"--option {spec!r}: expected a whole number") from None
    return text


def variant_files(flag: str, specs) -> dict[str, Path]:
    """--bootloader/--image VARIANT=FILE."""
    files = {}
    for spec in specs:
        variant, sep, name = spec.partition("=")
        if not sep or variant not in NAMES:
            raise RigError(f"{flag} {spec!r}: write VARIANT=FILE with VARIANT one of {', '.join(NAMES)}")
        if not Path(name).is_file():
            raise RigError(f"{flag} {spec!r}: no such file {name}")
        files[variant] = Path(name)
    return files


def check_real_boards(boards, bootloaders: dict, images: dict) -> None:
    """A real board's bootloader must trust the firmware key and its image must be the product's:
    the station cannot make either for it."""
    for board in boards:
        if board.virtual:
            continue
        for flag, given in (("--bootloader", bootloaders), ("--image", images)):
            if board.variant not in given:
                raise RigError(f"board {board.id} is a real {board.variant}: give its {flag} "
                               f"{board.variant}=FILE (the virtual lab's defaults do not run on silicon)")


# -- building the station


def prepare(workdir: Path, db_url: str | None, boards, *, name: str, operator: str, ca_key: str | None = None,
            ca_cert: str | None = None, firmware_keys: tuple[str, ...] = (), bootloaders: dict | None = None,
            images: dict | None = None, options: dict | None = None, force: bool = False,
            note=print) -> tuple[StationSpec, Records]:
    """The station's spec and its open records (db_url None: SQLite in the work folder). Keys that
    are given and the database are opened before the station writes anything of its own. Each
    variant signs with the first of `firmware_keys` its boot chain verifies, else with a key of the
    work folder of the first kind it verifies."""
    workdir = Path(workdir).resolve()
    given = {spec: load_signer(spec) for spec in (ca_key, *firmware_keys) if spec}
    variants_here = sorted({b.variant for b in boards})
    chosen = {v: next((spec for spec in firmware_keys if given[spec].public.kind in facts(v).signing_keys), None)
              for v in variants_here}
    unused = [spec for spec in firmware_keys if spec not in chosen.values()]
    if unused and None in chosen.values():  # a key given for boards that cannot verify it: say so, make none
        kinds = "; ".join(f"{v}: {' or '.join(KINDS[k] for k in facts(v).signing_keys)}" for v in variants_here)
        key = given[unused[0]]
        raise RigError(f"--firmware-key {key.source}: an {KINDS[key.public.kind]} key, which no board of this run "
                       f"is left to verify ({kinds})")
    if ca_cert and not Path(ca_cert).is_file():
        raise RigError(f"--ca-cert {ca_cert}: no such file")
    if db_url is None:
        workdir.mkdir(parents=True, exist_ok=True)
        db_url = default_db(workdir)
    records = Records(db_url)
    workdir.mkdir(parents=True, exist_ok=True)
    ca_spec = ca_key or _own_key(workdir / "ca-key.pem", "the provisioning CA key",
                                 "every device certificate chains to it", note)
    fw_specs = {v: spec or _firmware_key(workdir, facts(v).signing_keys[0], note) for v, spec in chosen.items()}
    ca_signer = given.get(ca_spec) or load_signer(ca_spec)
    fw_signers = {v: given.get(spec) or load_signer(spec) for v, spec in fw_specs.items()}
    cert_path = Path(ca_cert) if ca_cert else workdir / "ca" / f"{ca_signer.public.keyhash.hex()[:16]}.pem"
    _ca_cert(cert_path, ca_signer, name, note=note)
    by_variant: dict[str, list] = {}
    for b in boards:
        by_variant.setdefault(b.variant, []).append(b)
    firmware = {v: _firmware(v, group, fw_signers[v], (bootloaders or {}).get(v), (images or {}).get(v))
                for v, group in sorted(by_variant.items())}
    spec = StationSpec(name=name, operator=operator, db_url=db_url, ca_key=ca_spec, ca_cert=str(cert_path.resolve()),
                       firmware_keys=fw_specs, firmware=firmware, log=str(workdir / "station.log"), force=force,
                       options=options or {})
    return spec, records


def _own_key(path: Path, what: str, why: str, note, kind: str = ECDSA_P256) -> str:
    if make_pem(path, kind):
        note(f"made {what} {path} ({why}: keep it, back it up)")
    return str(path)


def firmware_key_path(workdir: Path, kind: str) -> Path:
    """Where the work folder keeps its firmware-signing key of `kind` (firmware-key.pem for EC P-256, as ever)."""
    return Path(workdir) / ("firmware-key.pem" if kind == ECDSA_P256 else f"firmware-key-{kind}.pem")


def _firmware_key(workdir: Path, kind: str, note) -> str:
    """The work folder's firmware-signing key of `kind`, made on first use."""
    return _own_key(firmware_key_path(workdir, kind), f"the {KINDS[kind]} firmware-signing key",
                    "the devices' bootloaders trust it", note, kind)


def _ca_cert(path: Path, signer, station: str, note) -> None:
    if path.exists():
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except ValueError:
            raise RigError(f"{path}: not a PEM certificate; give the CA certificate with --ca-cert") from None
        if identity.fingerprint(cert.public_key()) != identity.fingerprint(signer.public.key):
            raise RigError(f"{path}: this CA certificate is not of the CA key {signer.source}; "
                           "give the matching --ca-cert or --ca-key")
        return
    cert = identity.make_ca(signer, name=f"rig provisioning CA {station}")
    write_bytes(path, cert.public_bytes(serialization.Encoding.PEM))
    note(f"made the CA certificate of {signer.source}: {path}")


def _firmware(variant: str, boards, signer, bootloader: Path | None, image: Path | None) -> Firmware:
    from rig.image import esp_app, mcuboot, sbv2
    from rig.image.layouts import LAYOUTS
    from rig.ota import releases

    layouts = {b.flash_layout for b in boards}
    if len(layouts) > 1:
        raise RigError(f"the {variant} boards use different flash layouts ({', '.join(sorted(layouts))}); "
                       "provision them in separate runs (--board or --tag)")
    layout = LAYOUTS[layouts.pop()]
    if facts(variant).bootloader is Bootloader.ESP_IDF:
        app = image.read_bytes() if image else releases.esp32_image(FACTORY_VERSION)
        esp_app.parse(app)  # an ESP-IDF app image, checksum and digest right
        signed = sbv2.sign(app, signer)
        boot = bootloader.read_bytes() if bootloader else esp_app.bootloader_image()
        return Firmware(signed, boot)
    if image:
        signed = image.read_bytes()
        try:
            mcuboot.verify(signed, [signer.public])
        except RigError as exc:
            raise RigError(f"--image {variant}={image}: {exc}; sign it with `rig sign --key {signer.source}`") from None
    else:
        signed = releases.stm32_image(variant, FACTORY_VERSION, signer)
    if bootloader:
        return Firmware(signed, bootloader.read_bytes())
    from rig.sim.stm32 import vmcuboot

    return Firmware(signed, vmcuboot.build(layout, [signer.public]))
