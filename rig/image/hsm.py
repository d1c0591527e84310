"""A signer whose private key stays on a PKCS#11 token (an HSM; SoftHSM2 in tests).

The token does the signing: rig sends it a SHA-256 digest and gets a signature back. The private
key is found by label/id and used through its handle; rig never asks for its value. Errors name
the token and key, never the PIN.
"""

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pkcs11 import MGF, Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_ecdsa_signature

from rig.errors import RigError
from rig.image.keys import ECDSA_P256, PSS_SALT, Pkcs11Uri, PublicKey, Signer, redact


@contextlib.contextmanager
def token_lock(module_path: str) -> Iterator[None]:
    """One process (or thread) at a time on a PKCS#11 module's tokens, for the whole session:
    the provisioning station's fixtures are processes, and SoftHSM2's file store is not safe for
    that - a process logging in rewrites the token file another one is reading, which then finds
    no token or gets GeneralError (3 of 20 rounds of two processes here; the station's second
    board failed 'connect' that way)."""
    digest = hashlib.sha256(module_path.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"rig-pkcs11-{os.getuid()}-{digest}.lock"
    with open(path, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # released when the file closes
        yield


class Pkcs11Signer(Signer):
    def __init__(self, uri: str):
        self.source = redact(uri)
        self._uri = Pkcs11Uri.parse(uri)
        self._pin = self._uri.pin()
        with self._session() as session:
            self._check(session)
            self.public = self._public(session)

    def __repr__(self) -> str:
        # Also keeps the PIN attribute out of any default repr.
        return f"Pkcs11Signer({self.public.kind}, {self.source})"

    def sign_digest(self, digest: bytes) -> bytes:
        with self._session() as session:
            key = self._key(session, ObjectClass.PRIVATE_KEY)
            try:
                if self.public.kind == ECDSA_P256:
                    # CKM_ECDSA signs the digest as given and returns r || s; MCUboot wants DER.
                    return encode_ecdsa_signature(key.sign(digest, mechanism=Mechanism.ECDSA))
                return key.sign(digest, mechanism=Mechanism.RSA_PKCS_PSS,
                                mechanism_param=(Mechanism.SHA256, MGF.SHA256, PSS_SALT))
            except pkcs11.PKCS11Error as e:
                raise RigError(f"{self.source}: the token refused to sign ({type(e).__name__})") from None

    @contextlib.contextmanager
    def _session(self) -> Iterator[pkcs11.Session]:
        u = self._uri
        with token_lock(u.module_path):
            try:
                session = pkcs11.lib(u.module_path).get_token(token_label=u.token).open(user_pin=self._pin)
            except pkcs11.NoSuchToken:
                raise RigError(f"{self.source}: no token labelled {u.token!r} in {u.module_path}") from None
            except pkcs11.PinIncorrect:
                raise RigError(f"{self.source}: the token rejected the PIN; check the pin-source") from None
            except pkcs11.PKCS11Error as e:
                # Loading errors carry the OS message (missing library); other codes carry no secret.
                raise RigError(f"{self.source}: PKCS#11 error: {e.args[0] if e.args else type(e).__name__}") from None
            with session:
                yield session

    def _key(self, session, object_class):
        u = self._uri
        what = f"{'private' if object_class == ObjectClass.PRIVATE_KEY else 'public'} key"
        try:
            return session.get_key(object_class=object_class, label=u.object, id=u.id)
        except pkcs11.NoSuchKey:
            raise RigError(f"{self.source}: token {u.token!r} holds no {what} with that object/id") from None
        except pkcs11.MultipleObjectsReturned:
            raise RigError(f"{self.source}: several {what}s match; add id= to the URI") from None

    def _check(self, session) -> None:
        key = self._key(session, ObjectClass.PRIVATE_KEY)
        if key[Attribute.EXTRACTABLE] or not key[Attribute.SENSITIVE]:
            raise RigError(f"{self.source}: the private key is extractable or not sensitive; "
                           "a signing key must never leave the token (regenerate it with CKA_EXTRACTABLE false)")

    def _public(self, session) -> PublicKey:
        pub = self._key(session, ObjectClass.PUBLIC_KEY)
        if pub.key_type == KeyType.EC:
            key = serialization.load_der_public_key(encode_ec_public_key(pub))
        elif pub.key_type == KeyType.RSA:
            n = int.from_bytes(pub[Attribute.MODULUS], "big")
            e = int.from_bytes(pub[Attribute.PUBLIC_EXPONENT], "big")
            key = rsa.RSAPublicNumbers(e, n).public_key()
        else:
            raise RigError(f"{self.source}: key type not supported; use an EC P-256, RSA-2048 or RSA-3072 key")
        return PublicKey.of(key, self.source)
