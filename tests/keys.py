"""Private keys for tests, made once per test process and named: an RSA-3072 key takes a prime search
(up to seconds of CPU on a loaded machine), and the same few keys are wanted in many places."""

import functools

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from rig.image.keys import ECDSA_P256, RSA_3072


@functools.cache
def pem(name: str, kind: str = ECDSA_P256) -> bytes:
    """The PKCS#8 PEM of test key `name` of `kind` (ECDSA_P256 or RSA_3072): the same name, the same
    key within a process; another name, another key (a key a board must not trust)."""
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if kind == ECDSA_P256:
        key = ec.generate_private_key(ec.SECP256R1())
    elif kind == RSA_3072:
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    else:
        raise ValueError(f"no test key of kind {kind}")
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
