"""Per-device identity: a P-256 key pair, a CSR, and an X.509 certificate from the station's CA.

The CA signs through rig.image.keys' Signer, so its key can stay in an HSM (PKCS#11): the
certificate's to-be-signed part is built here with asn1crypto, its SHA-256 digest is signed by the
signer, and the two are joined - no private key object ever has to exist in this process.
The device's own key pair comes from a KeyMaker: in the station's HSM over PKCS#11 (the token's
RNG; the pair is a session object, so it never reaches the token's storage, and it is destroyed as
soon as its value is read for writing into the device) or, without an HSM, from this process's
CSPRNG. Either way the private key exists only in memory until the station writes it into the
device; nothing here logs, stores or prints it.
"""

import datetime
import hashlib
import secrets

from asn1crypto import algos, keys
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rig.errors import RigError
from rig.image.keys import ECDSA_P256, Signer

DEVICE_VALIDITY = datetime.timedelta(days=20 * 365)  # devices outlive any sensible renewal plan
CA_VALIDITY = datetime.timedelta(days=25 * 365)


def device_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


class KeyMaker:
    """Makes device key pairs in memory (the process's CSPRNG)."""

    source = "memory"

    def generate(self) -> ec.EllipticCurvePrivateKey:
        return device_key()


class Pkcs11KeyMaker(KeyMaker):
    """Makes device key pairs on the token of a PKCS#11 URI (the CA key's URI will do: its object is
    not used).

    The pair is generated as session objects (CKA_TOKEN false: never stored on the token) that may
    be read once (CKA_EXTRACTABLE true, CKA_SENSITIVE false), read, and destroyed at once."""

    def __init__(self, uri: str):
        from rig.image.keys import Pkcs11Uri, redact

        self.source = redact(uri)
        self._uri = Pkcs11Uri.parse(uri)

    def generate(self) -> ec.EllipticCurvePrivateKey:
        import pkcs11
        from pkcs11 import Attribute, KeyType
        from pkcs11.util.ec import encode_named_curve_parameters

        from rig.image.hsm import token_lock

        u = self._uri
        try:
            with (token_lock(u.module_path),
                  pkcs11.lib(u.module_path).get_token(token_label=u.token).open(user_pin=u.pin(), rw=True) as session):
                params = session.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
                public, private = params.generate_keypair(
                    store=False, private_template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True})
                try:
                    value = int.from_bytes(private[Attribute.VALUE], "big")
                finally:
                    private.destroy()
                    public.destroy()
        except pkcs11.PKCS11Error as e:
            raise RigError(f"{self.source}: the token could not make a device key ({type(e).__name__})") from None
        return ec.derive_private_key(value, ec.SECP256R1())


def key_maker(spec: str | None) -> KeyMaker:
    """A pkcs11: URI names the token that makes device keys; None makes them in memory."""
    return Pkcs11KeyMaker(spec) if spec and spec.startswith("pkcs11:") else KeyMaker()


def csr(key: ec.EllipticCurvePrivateKey, serial: str, variant: str) -> x509.CertificateSigningRequest:
    """The device's request: its serial as CN and serialNumber, its variant as OU."""
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, variant),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, serial),
        x509.NameAttribute(NameOID.COMMON_NAME, serial),
    ])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def fingerprint(public_key) -> str:
    """SHA-256 of the SubjectPublicKeyInfo, hex: the identity's name in the records."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def make_ca(signer: Signer, name: str = "rig provisioning CA") -> x509.Certificate:
    """A self-signed CA certificate for a station key (PEM file or HSM)."""
    spki = _spki(signer)
    subject = ax509.Name.build({"organization_name": "rig", "common_name": name})
    extensions = [
        _ext("basic_constraints", {"ca": True, "path_len_constraint": 0}, critical=True),
        _ext("key_usage", {"key_cert_sign", "crl_sign"}, critical=True),
        _ext("key_identifier", hashlib.sha1(spki["public_key"].contents).digest()),
    ]
    return _sign(signer, subject, subject, spki, CA_VALIDITY, extensions)


def issue(request: x509.CertificateSigningRequest, ca: x509.Certificate, signer: Signer) -> x509.Certificate:
    """The device certificate: the CSR's subject and key, issued by `ca` and signed by `signer`."""
    if not request.is_signature_valid:
        raise RigError("CSR signature does not verify: the device's key and request do not belong together")
    spki = keys.PublicKeyInfo.load(request.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    subject = ax509.Name.load(request.subject.public_bytes())
    issuer = ax509.Name.load(ca.subject.public_bytes())
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    extensions = [
        _ext("basic_constraints", {"ca": False}, critical=True),
        _ext("key_usage", {"digital_signature", "key_agreement"}, critical=True),
        _ext("extended_key_usage", ["client_auth"]),
        _ext("authority_key_identifier", {"key_identifier": ca_ski}),
    ]
    return _sign(signer, issuer, subject, spki, DEVICE_VALIDITY, extensions)


def _spki(signer: Signer) -> keys.PublicKeyInfo:
    public = signer.public
    if public.kind != ECDSA_P256:
        raise RigError("the provisioning CA key must be EC P-256")
    return keys.PublicKeyInfo.load(public.key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def _time(when: datetime.datetime) -> ax509.Time:
    # RFC 5280: UTCTime through 2049, GeneralizedTime from 2050 on.
    return ax509.Time({"utc_time" if when.year < 2050 else "general_time": when})


def _ext(name, value, critical=False) -> dict:
    return {"extn_id": name, "critical": critical, "extn_value": value}


def _sign(signer, issuer, subject, spki, validity, extensions) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    algorithm = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
    tbs = ax509.TbsCertificate({
        "version": "v3",
        "serial_number": secrets.randbits(159),
        "signature": algorithm,
        "issuer": issuer,
        "validity": {"not_before": _time(now), "not_after": _time(now + validity)},
        "subject": subject,
        "subject_public_key_info": spki,
        "extensions": extensions,
    })
    digest = hashlib.sha256(tbs.dump()).digest()
    cert = ax509.Certificate({
        "tbs_certificate": tbs,
        "signature_algorithm": algorithm,
        "signature_value": signer.sign_digest(digest),
    })
    return x509.load_der_x509_certificate(cert.dump())
