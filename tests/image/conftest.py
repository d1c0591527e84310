"""Keys and helpers shared by the image tests: PEM files as a user would have them on disk."""

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

IMGTOOL = [str(Path(sys.executable).parent / "imgtool")]


def _write_key(path: Path, key) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def _write_public(path: Path, key) -> Path:
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


@pytest.fixture(scope="session")
def keydir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(d / "ec.pem", ec_key)
    _write_public(d / "ec.pub.pem", ec_key)
    _write_key(d / "ec2.pem", ec.generate_private_key(ec.SECP256R1()))
    _write_key(d / "rsa.pem", rsa_key)
    _write_public(d / "rsa.pub.pem", rsa_key)
    # RSA-3072, the ESP32's Secure Boot V2 scheme: a second or so each to make, so once per session.
    rsa3072 = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    _write_key(d / "rsa3072.pem", rsa3072)
    _write_public(d / "rsa3072.pub.pem", rsa3072)
    _write_key(d / "rsa3072b.pem", rsa.generate_private_key(public_exponent=65537, key_size=3072))
    return d


@pytest.fixture(scope="session")
def imgtool():
    """Run the real imgtool; returns the CompletedProcess."""

    def run(*args) -> subprocess.CompletedProcess:
        return subprocess.run([*IMGTOOL, *map(str, args)], capture_output=True, text=True)

    return run
