"""Token set-up and inspection for the SoftHSM2 tests, run as a separate process.

SoftHSM reads SOFTHSM2_CONF once per process (at C_Initialize), so each test token is driven
from its own process rather than from pytest's.

    python hsm_tool.py MODULE genkeys        # EC P-256 fw-key, RSA-2048 fw-rsa, RSA-3072 fw-sb (ESP32
                                             # Secure Boot V2), extractable fw-weak
    python hsm_tool.py MODULE attrs LABEL    # JSON of the private key's protection attributes
    python hsm_tool.py MODULE sign URI IN OUT   # rig.image.mcuboot.sign with that key
    python hsm_tool.py MODULE public URI     # the key's public half from the token, as PEM
"""

import json
import sys

import pkcs11
from pkcs11 import Attribute, KeyType
from pkcs11.util.ec import encode_named_curve_parameters

PIN = "1234"
PROTECTED = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}


def genkeys(lib) -> None:
    with lib.get_token(token_label="rig").open(user_pin=PIN, rw=True) as s:
        params = s.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
        params.generate_keypair(store=True, label="fw-key", private_template=PROTECTED)
        s.generate_keypair(KeyType.RSA, 2048, store=True, label="fw-rsa", private_template=PROTECTED)
        s.generate_keypair(KeyType.RSA, 3072, store=True, label="fw-sb", private_template=PROTECTED)
        params.generate_keypair(store=True, label="fw-weak",
                                private_template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True})


def attrs(lib, label: str) -> None:
    with lib.get_token(token_label="rig").open(user_pin=PIN) as s:
        key = s.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=label)
        print(json.dumps({"extractable": bool(key[Attribute.EXTRACTABLE]), "sensitive": bool(key[Attribute.SENSITIVE]),
                          "never_extractable": bool(key[Attribute.NEVER_EXTRACTABLE])}))


def sign(uri: str, infile: str, outfile: str) -> None:
    from rig.errors import RigError
    from rig.image import mcuboot
    from rig.image.keys import load_signer

    try:
        signer = load_signer(uri)
        image = mcuboot.sign(open(infile, "rb").read(), signer, "3.0.0", security_counter=1)
    except RigError as e:
        print(f"RigError: {e}", file=sys.stderr)
        sys.exit(2)
    with open(outfile, "wb") as f:
        f.write(image)
    print(repr(signer))


def public(uri: str) -> None:
    from cryptography.hazmat.primitives import serialization

    from rig.image.keys import load_public_key

    key = load_public_key(uri).key
    print(key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())


if __name__ == "__main__":
    module, verb, *args = sys.argv[1:]
    if verb in ("sign", "public"):
        {"sign": sign, "public": public}[verb](*args)
    else:
        {"genkeys": genkeys, "attrs": attrs}[verb](pkcs11.lib(module), *args)
