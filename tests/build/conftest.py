"""One full `rig build` per test session, shared by the build tests (it takes a few seconds)."""

import json
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rig.build import cache
from rig.image.keys import load_signer


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The output directory of `rig build --version 1.2.3+4`, run as a user runs it."""
    out = tmp_path_factory.mktemp("firmware")
    proc = subprocess.run([sys.executable, "-m", "rig", "build", "--out", str(out), "--version", "1.2.3+4"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out, json.loads((out / "manifest.json").read_text()), proc.stdout


@pytest.fixture(scope="session")
def key_pem(tmp_path_factory):
    """A throwaway ECDSA P-256 signing key as a PEM file, as `imgtool keygen -t ecdsa-p256` makes."""
    pem = tmp_path_factory.mktemp("keys") / "fw.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return pem


@pytest.fixture(scope="session")
def signer(key_pem):
    return load_signer(key_pem)


@pytest.fixture(scope="session")
def built_new():
    """variant -> the path of its app built at version 2.0.0 (fault none): a real code change from
    `built` (the descriptor and banner differ). From rig.build.cache, so xdist workers share one build."""
    return lambda variant: cache.app(variant, "2.0.0").bin
