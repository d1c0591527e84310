"""ESP32 Secure Boot V2 ECDSA-P256 blocks: espsecure accepts ours, we accept espsecure's, tampering fails."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rig.errors import RigError
from rig.image.keys import load_public_key, load_signer
from rig.image.sbv2 import BLOCK_SIZE, SECTOR, SignatureBlockError, key_digest, parse, sign, verify

ESPSECURE = [str(Path(sys.executable).parent / "espsecure")]
IMAGE = os.urandom(5000)


def espsecure(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*ESPSECURE, *map(str, args)], capture_output=True, text=True)


def test_espsecure_verifies_ours(tmp_path, keydir):
    out = sign(IMAGE, load_signer(keydir / "ec.pem"))
    assert len(out) == 2 * SECTOR + SECTOR and out[len(IMAGE) : 2 * SECTOR] == b"\xff" * (2 * SECTOR - len(IMAGE))
    (tmp_path / "signed.bin").write_bytes(out)
    r = espsecure("verify-signature", "--version", "2", "--keyfile", keydir / "ec.pub.pem", tmp_path / "signed.bin")
    assert r.returncode == 0 and "verification successful" in r.stdout, r.stdout + r.stderr
    r = espsecure("verify-signature", "--version", "2", "--keyfile", keydir / "ec2.pem", tmp_path / "signed.bin")
    assert r.returncode != 0


def test_same_block_as_espsecure_but_the_signature(tmp_path, keydir):
    (tmp_path / "app.bin").write_bytes(IMAGE)
    r = espsecure("sign-data", "--version", "2", "--keyfile", keydir / "ec.pem", "--output", tmp_path / "theirs.bin",
                  tmp_path / "app.bin")
    assert r.returncode == 0, r.stdout + r.stderr
    theirs = (tmp_path / "theirs.bin").read_bytes()
    ours = sign(IMAGE, load_signer(keydir / "ec.pem"))
    sig_at = len(ours) - SECTOR + 101  # r || s are randomised: everything else is equal
    assert len(ours) == len(theirs) and ours[:sig_at] == theirs[:sig_at]
    assert ours[sig_at + 64 : sig_at - 101 + 1196] == theirs[sig_at + 64 : sig_at - 101 + 1196]
    assert ours[-SECTOR + 1200 :] == theirs[-SECTOR + 1200 :]
    # ... and we verify theirs, and agree on the eFuse key digest.
    block = verify(theirs, [load_public_key(keydir / "ec.pub.pem")])
    r = espsecure("digest-sbv2-public-key", "--keyfile", keydir / "ec.pem", "--output", tmp_path / "digest.bin")
    assert r.returncode == 0, r.stdout + r.stderr
    assert block.key_digest == (tmp_path / "digest.bin").read_bytes() == key_digest(load_public_key(keydir / "ec.pem"))


@pytest.fixture(scope="module")
def signed(keydir):
    return sign(IMAGE[:100], load_signer(keydir / "ec.pem")), [load_public_key(keydir / "ec.pem")]


def test_flips_in_body_and_block_are_rejected(signed):
    data, keys = signed
    # Every byte of the body and of the block's checked part, one bit each.
    for i in [*range(0, 100), *range(SECTOR, SECTOR + 1200)]:
        bad = bytearray(data)
        bad[i] ^= 1 << (i % 8)
        with pytest.raises(SignatureBlockError) as e:
            verify(bytes(bad), keys)
        assert "\n" not in str(e.value)


def test_wrong_key_and_truncation(signed, keydir):
    data, keys = signed
    with pytest.raises(SignatureBlockError, match="not trusted"):
        verify(data, [load_public_key(keydir / "ec2.pem")])
    for n in (0, 1, SECTOR - 1, SECTOR, len(data) - 1):
        with pytest.raises(SignatureBlockError):
            verify(data[:n], keys)
    assert parse(data)[1][0].index == 0 and len(parse(data)[0]) == SECTOR


def test_unsigned_sector_has_no_block(signed):
    data, keys = signed
    with pytest.raises(SignatureBlockError, match="no valid signature block"):
        verify(data[:SECTOR] + b"\xff" * SECTOR, keys)


def test_rsa_key_is_refused(keydir):
    with pytest.raises(RigError, match="ECDSA-P256 only"):
        sign(IMAGE, load_signer(keydir / "rsa.pem"))


def test_block_size():
    assert BLOCK_SIZE == 1216


def test_append_signatures_for_key_rotation(tmp_path, keydir):
    """Three keys, three blocks: espsecure accepts the image with each; a fourth does not fit."""
    data = sign(IMAGE, load_signer(keydir / "ec.pem"))
    data = sign(data, load_signer(keydir / "ec2.pem"), append=True)
    r = espsecure("generate-signing-key", "--version", "2", "--scheme", "ecdsa256", tmp_path / "k3.pem")
    assert r.returncode == 0, r.stdout + r.stderr
    data = sign(data, load_signer(tmp_path / "k3.pem"), append=True)
    (tmp_path / "signed.bin").write_bytes(data)
    for key in (keydir / "ec.pem", keydir / "ec2.pem", tmp_path / "k3.pem"):
        r = espsecure("verify-signature", "--version", "2", "--keyfile", key, tmp_path / "signed.bin")
        assert r.returncode == 0, r.stdout + r.stderr
        assert verify(data, [load_public_key(key)]).key_digest == key_digest(load_public_key(key))
    assert [b.index for b in parse(data)[1]] == [0, 1, 2]
    with pytest.raises(SignatureBlockError, match="already holds 3 blocks"):
        sign(data, load_signer(keydir / "ec.pem"), append=True)
    with pytest.raises(SignatureBlockError, match="nothing to append to"):
        sign(data[:-SECTOR] + b"\xff" * SECTOR, load_signer(keydir / "ec.pem"), append=True)
