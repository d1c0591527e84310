"""Keys from PEM files: the kinds MCUboot takes, key hashes as imgtool makes them, no secret in sight."""

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from rig.errors import RigError
from rig.image.keys import ECDSA_P256, RSA_2048, load_public_key, load_signer


def write(path, key, password=None):
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))
    return path


def test_kinds_and_key_hashes(tmp_path, keydir, imgtool):
    ec_key, rsa_key = load_public_key(keydir / "ec.pem"), load_public_key(keydir / "rsa.pub.pem")
    assert (ec_key.kind, ec_key.sig_tlv, len(ec_key.der)) == (ECDSA_P256, 0x22, 91)
    assert (rsa_key.kind, rsa_key.sig_tlv) == (RSA_2048, 0x20)
    assert rsa_key.der[:2] == b"\x30\x82" and len(rsa_key.der) == 270  # PKCS#1 RSAPublicKey, not SPKI
    for name, key in (("ec", ec_key), ("rsa", rsa_key)):
        # imgtool embeds (and MCUboot hashes) exactly these bytes.
        r = imgtool("getpub", "-k", keydir / f"{name}.pem", "-e", "raw", "-o", tmp_path / f"{name}.der")
        assert r.returncode == 0, r.stderr
        assert key.der == (tmp_path / f"{name}.der").read_bytes()
        assert key.keyhash == hashlib.sha256(key.der).digest()
        assert load_public_key(keydir / f"{name}.pem").keyhash == load_public_key(keydir / f"{name}.pub.pem").keyhash


def test_signer_round_trip_and_repr(keydir):
    for name in ("ec", "rsa"):
        signer = load_signer(keydir / f"{name}.pem")
        digest = hashlib.sha256(b"image").digest()
        assert signer.public.verify_digest(signer.sign_digest(digest), digest)
        assert not signer.public.verify_digest(signer.sign_digest(digest), hashlib.sha256(b"other").digest())
        assert not signer.public.verify_digest(b"\x30\x00", digest)  # garbage DER is "invalid", not an exception
        text = repr(signer) + repr(signer.public)
        assert "PRIVATE" not in text and str(keydir / f"{name}.pem") in text


@pytest.mark.parametrize("make, match", [
    (lambda: ec.generate_private_key(ec.SECP384R1()), "not supported"),
    (lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024), "not supported"),
    (lambda: ed25519.Ed25519PrivateKey.generate(), "not supported"),
])
def test_unsupported_keys(tmp_path, make, match):
    path = write(tmp_path / "k.pem", make())
    with pytest.raises(RigError, match=match):
        load_signer(path)


def test_bad_key_files(tmp_path, keydir):
    cases = {
        "encrypted": (write(tmp_path / "enc.pem", ec.generate_private_key(ec.SECP256R1()), b"pw"), "password"),
        "garbage": (tmp_path / "garbage.pem", "not a PEM key file"),
        "broken": (tmp_path / "broken.pem", "not a valid PEM private key"),
        "missing": (tmp_path / "missing.pem", "cannot read"),
        "public": (keydir / "ec.pub.pem", "holds no private key"),
    }
    (tmp_path / "garbage.pem").write_text("hello")
    (tmp_path / "broken.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    for path, match in cases.values():
        with pytest.raises(RigError, match=match) as e:
            load_signer(path)
        assert "\n" not in str(e.value) and "BEGIN" not in str(e.value)
