"""Signing keys from a PEM file or from an HSM over PKCS#11, and public keys to verify with.

A signer signs a SHA-256 digest and returns the signature in the form MCUboot stores it:
ECDSA-P256 as DER (TLV 0x22), RSA as RSA-PSS/SHA-256/MGF1-SHA-256 with a 32-byte salt (RSA-2048:
TLV 0x20; RSA-3072 is the scheme of the ESP32's Secure Boot V2, rig.image.sbv2). The key hash
MCUboot looks its keys up by is SHA-256 of the public key as imgtool embeds it: the 91-byte
SubjectPublicKeyInfo for EC, the PKCS#1 RSAPublicKey for RSA.

Secrets stay out of sight: a PKCS#11 private key is used on the token and never read, and no
repr, log line or error message of this module carries key material or a PIN.
"""

import hashlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from rig.atomic import write_bytes
from rig.errors import RigError

ECDSA_P256 = "ecdsa-p256"
RSA_2048 = "rsa-2048"
RSA_3072 = "rsa-3072"
KINDS = {ECDSA_P256: "EC P-256", RSA_2048: "RSA-2048", RSA_3072: "RSA-3072"}  # the kind's name for messages
SIG_TLV = {ECDSA_P256: 0x22, RSA_2048: 0x20}  # the MCUboot signature TLVs rig makes and checks
PSS_SALT = 32
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT)
_PREHASHED = utils.Prehashed(hashes.SHA256())
PKCS11_HINT = ("e.g. pkcs11:token=rig;object=fw-key?module-path=/usr/lib/softhsm/libsofthsm2.so"
               "&pin-source=env:RIG_PKCS11_PIN")


@dataclass(frozen=True)
class PublicKey:
    """A public key MCUboot (or the ESP32 ROM) can check signatures with."""

    kind: str  # ECDSA_P256, RSA_2048 or RSA_3072
    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey

    @classmethod
    def of(cls, key, source: str) -> "PublicKey":
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            return cls(ECDSA_P256, key)
        if isinstance(key, rsa.RSAPublicKey) and key.key_size in (2048, 3072):
            return cls(RSA_2048 if key.key_size == 2048 else RSA_3072, key)
        raise RigError(f"{source}: key type not supported; use an EC P-256, RSA-2048 or RSA-3072 key")

    @property
    def der(self) -> bytes:
        """The public key as imgtool embeds it (and hashes it for KEYHASH)."""
        if self.kind == ECDSA_P256:
            return self.key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return self.key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)

    @property
    def keyhash(self) -> bytes:
        return hashlib.sha256(self.der).digest()

    @property
    def sig_tlv(self) -> int:
        if self.kind not in SIG_TLV:
            raise RigError(f"a {KINDS[self.kind]} key signs no MCUboot image here (rig's MCUboot verifies "
                           f"{' or '.join(KINDS[k] for k in SIG_TLV)}); give one of those")
        return SIG_TLV[self.kind]

    def verify_digest(self, signature: bytes, digest: bytes) -> bool:
        try:
            if isinstance(self.key, ec.EllipticCurvePublicKey):
                self.key.verify(signature, digest, ec.ECDSA(_PREHASHED))
            else:
                self.key.verify(signature, digest, _PSS, _PREHASHED)
        except (InvalidSignature, ValueError):  # ValueError: not even a DER signature
            return False
        return True

    def __repr__(self) -> str:
        return f"PublicKey({self.kind}, keyhash={self.keyhash.hex()[:16]}...)"


class Signer(ABC):
    """Signs SHA-256 digests; `public` is the matching public key."""

    public: PublicKey
    source: str  # where the key lives, safe to print (a path, or a URI without its PIN)

    @abstractmethod
    def sign_digest(self, digest: bytes) -> bytes:
        """The signature of a SHA-256 digest: DER for ECDSA, PSS for RSA."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.public.kind}, {self.source})"


class PemSigner(Signer):
    def __init__(self, path: Path):
        self.source = str(path)
        key = _load_pem(Path(path))
        if not hasattr(key, "public_key"):  # only private keys derive a public key
            raise RigError(f"{path}: holds no private key; signing needs the private key file")
        self.public = PublicKey.of(key.public_key(), self.source)  # refuses all but EC P-256, RSA-2048/3072
        self._key = key

    def sign_digest(self, digest: bytes) -> bytes:
        if self.public.kind == ECDSA_P256:
            return self._key.sign(digest, ec.ECDSA(_PREHASHED))
        return self._key.sign(digest, _PSS, _PREHASHED)


def _load_pem(path: Path):
    """The key object of a PEM file: private or public key."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RigError(f"{path}: cannot read key file ({e.strerror})") from None
    if b"PRIVATE KEY" in data:
        try:
            return serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise RigError(f"{path}: the private key is password-protected; give an unencrypted key "
                           "or keep it in an HSM (pkcs11: URI)") from None
        except (ValueError, UnsupportedAlgorithm):
            raise RigError(f"{path}: not a valid PEM private key") from None
    try:
        return serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise RigError(f"{path}: not a PEM key file (expected a PRIVATE KEY or PUBLIC KEY block)") from None


def make_p256_pem(path: Path) -> bool:
    """Write a new EC P-256 private key to `path` (PKCS#8 PEM, mode 0600) unless a file is there;
    True if one was made. For keys a tool makes on first use and keeps (campaign, station keys)."""
    return make_pem(path, ECDSA_P256)


def make_pem(path: Path, kind: str) -> bool:
    """As make_p256_pem, for a key of `kind` (RSA keys with exponent 65537, as espsecure and imgtool make them)."""
    if path.exists():
        return False
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if kind == ECDSA_P256:
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072 if kind == RSA_3072 else 2048)
    write_bytes(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()), mode=0o600)
    return True


def load_signer(spec: str | Path) -> Signer:
    """A signer from a PEM private key path or an RFC 7512 `pkcs11:` URI."""
    if str(spec).startswith("pkcs11:"):
        from rig.image.hsm import Pkcs11Signer  # python-pkcs11 only when an HSM is asked for

        return Pkcs11Signer(str(spec))
    return PemSigner(Path(spec))


def load_public_key(spec: str | Path) -> PublicKey:
    """A public key from a PEM file (private or public key) or from a PKCS#11 token."""
    if str(spec).startswith("pkcs11:"):
        return load_signer(spec).public
    key = _load_pem(Path(spec))
    if hasattr(key, "public_key"):
        key = key.public_key()
    return PublicKey.of(key, str(spec))


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of an RFC 7512 URI rig uses. The PIN is resolved late and never stored here."""

    token: str
    object: str | None
    id: bytes | None
    module_path: str
    pin_source: str | None  # env:NAME (rig's addition), file:PATH or PATH (RFC 7512)
    pin_value: str | None

    @classmethod
    def parse(cls, uri: str) -> "Pkcs11Uri":
        body = uri[len("pkcs11:"):]
        path, _, query = body.partition("?")
        attrs = _pairs(path, ";")
        params = _pairs(query, "&")
        safe = redact(uri)
        if "token" not in attrs:
            raise RigError(f"{safe}: names no token; {PKCS11_HINT}")
        if "object" not in attrs and "id" not in attrs:
            raise RigError(f"{safe}: names no key (object= or id=); {PKCS11_HINT}")
        if "module-path" not in params:
            raise RigError(f"{safe}: no module-path= to the PKCS#11 library; {PKCS11_HINT}")
        if "pin-source" not in params and "pin-value" not in params:
            raise RigError(f"{safe}: no PIN; add pin-source=env:VARIABLE or pin-source=file:PATH")
        text = {k: unquote(v) for k, v in (attrs | params).items()}
        key_id = unquote_to_bytes(attrs["id"]) if "id" in attrs else None  # id= is raw bytes
        return cls(text["token"], text.get("object"), key_id, text["module-path"], text.get("pin-source"),
                   text.get("pin-value"))

    def pin(self) -> str:
        if self.pin_value is not None:
            return self.pin_value
        source = self.pin_source or ""
        if source.startswith("env:"):
            name = source[4:]
            if name not in os.environ:
                raise RigError(f"PKCS#11 PIN: environment variable {name} is not set")
            return os.environ[name]
        path = Path(source[5:] if source.startswith("file:") else source)
        try:
            return path.read_text().strip()
        except OSError as e:
            raise RigError(f"PKCS#11 PIN: cannot read {path} ({e.strerror})") from None


def _pairs(text: str, sep: str) -> dict[str, str]:
    """name=value items, values still percent-encoded."""
    return dict(item.partition("=")[::2] for item in text.split(sep) if item)


def redact(uri: str) -> str:
    """A PKCS#11 URI safe to print on one line: a pin-value becomes ***, control characters escapes."""
    path, sep, query = uri.partition("?")
    parts = ["pin-value=***" if p.startswith("pin-value=") else p for p in query.split("&")] if sep else []
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in path + sep + "&".join(parts))
