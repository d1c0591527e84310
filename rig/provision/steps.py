"""The steps every recipe shares: refuse a provisioned unit, and give the unit its identity.

A variant's recipe runs its own `identify` step first (it sets unit.record.chip_id from what the
part reports: MAC / unique id), then CHECK, ..., IDENTITY, then writes the identity its own way.
"""

from cryptography.hazmat.primitives import serialization

from rig.errors import RigError
from rig.provision import identity
from rig.provision.recipe import Refused, Step, Unit

SERIAL_PREFIX = {"esp32": "RIG-E32", "stm32h7": "RIG-H7", "stm32l0": "RIG-L0"}


def serial_of(variant: str, chip_id: str) -> str:
    """A unit's serial follows from its chip id, so an interrupted unit gets the same one again."""
    return f"{SERIAL_PREFIX[variant]}-{chip_id.upper()}"


def check_not_provisioned(unit: Unit) -> dict:
    known = unit.station.records.provisioned(unit.record.chip_id)
    if known and not unit.station.force:
        raise Refused(f"already provisioned as {known['serial']} on {known['last_provisioned_at']}; "
                      "re-provision with --force")
    unit.record.forced = bool(known)
    unit.record.serial = known["serial"] if known else serial_of(unit.board.variant, unit.record.chip_id)
    return {"serial": unit.record.serial, "reprovisioning": bool(known)}


def make_identity(unit: Unit) -> dict:
    """A fresh key pair (HSM or memory), its CSR, and the certificate the station's CA issues."""
    st, rec = unit.station, unit.record
    if rec.serial is None:
        raise RigError("no serial yet: the check step must run before the identity step")
    unit.device_key = st.keys.generate()
    request = identity.csr(unit.device_key, rec.serial, unit.board.variant)
    cert = identity.issue(request, st.ca_cert, st.ca_signer)
    rec.certificate = cert.public_bytes(serialization.Encoding.PEM).decode()
    rec.key_fingerprint = identity.fingerprint(cert.public_key())
    return {"key_source": st.keys.source, "key_fingerprint": rec.key_fingerprint,
            "certificate_serial": format(cert.serial_number, "x")}


CHECK = Step("check", check_not_provisioned, "refuse a unit the records know, unless --force")
IDENTITY = Step("identity", make_identity, "device key pair, CSR, certificate from the station's CA")
