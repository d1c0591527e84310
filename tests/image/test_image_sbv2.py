"""ESP32 Secure Boot V2 blocks: espsecure accepts ours, we accept espsecure's, tampering fails.

RSA-3072 is what the ESP32 verifies; ECDSA-P256 blocks are made and checked for the later chips
that verify them, and a check for RSA-3072 finds no block in them.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rig.errors import RigError
from rig.image.keys import ECDSA_P256, RSA_3072, load_public_key, load_signer
from rig.image.sbv2 import BLOCK_SIZE, SECTOR, SignatureBlockError, key_digest, parse, sign, verify

ESPSECURE = [str(Path(sys.executable).parent / "espsecure")]
IMAGE = os.urandom(5000)
RSA = (RSA_3072,)
EC = (ECDSA_P256,)
RSA_SIG_AT = 812  # the signature's offset in an RSA block: all before it is deterministic


def espsecure(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*ESPSECURE, *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("key, public", [("rsa3072.pem", "rsa3072.pub.pem"), ("ec.pem", "ec.pub.pem")])
def test_espsecure_verifies_ours(tmp_path, keydir, key, public):
    out = sign(IMAGE, load_signer(keydir / key))
    assert len(out) == 2 * SECTOR + SECTOR and out[len(IMAGE) : 2 * SECTOR] == b"\xff" * (2 * SECTOR - len(IMAGE))
    (tmp_path / "signed.bin").write_bytes(out)
    r = espsecure("verify-signature", "--version", "2", "--keyfile", keydir / public, tmp_path / "signed.bin")
    assert r.returncode == 0 and "verification successful" in r.stdout, r.stdout + r.stderr
    other = "rsa3072b.pem" if key.startswith("rsa") else "ec2.pem"
    r = espsecure("verify-signature", "--version", "2", "--keyfile", keydir / other, tmp_path / "signed.bin")
    assert r.returncode != 0


def test_same_rsa_block_as_espsecure_but_the_signature(tmp_path, keydir):
    (tmp_path / "app.bin").write_bytes(IMAGE)
    r = espsecure("sign-data", "--version", "2", "--keyfile", keydir / "rsa3072.pem", "--output",
                  tmp_path / "theirs.bin", tmp_path / "app.bin")
    assert r.returncode == 0, r.stdout + r.stderr
    theirs = (tmp_path / "theirs.bin").read_bytes()
    ours = sign(IMAGE, load_signer(keydir / "rsa3072.pem"))
    sig_at = len(ours) - SECTOR + RSA_SIG_AT  # PSS is salted: everything but the signature (and CRC) is equal
    assert len(ours) == len(theirs) and ours[:sig_at] == theirs[:sig_at]
    assert ours[-SECTOR + 1200 :] == theirs[-SECTOR + 1200 :]
    # ... we verify theirs, and the eFuse key digest is espsecure's, by either of its commands.
    block = verify(theirs, [load_public_key(keydir / "rsa3072.pub.pem")], RSA)
    assert block.kind == RSA_3072 and block.version == 0x02
    for command in ("digest-sbv2-public-key", "digest-rsa-public-key"):
        r = espsecure(command, "--keyfile", keydir / "rsa3072.pem", "--output", tmp_path / "digest.bin")
        assert r.returncode == 0, r.stdout + r.stderr
        assert block.key_digest == (tmp_path / "digest.bin").read_bytes() == key_digest(
            load_public_key(keydir / "rsa3072.pem"))


def test_same_ecdsa_block_as_espsecure_but_the_signature(tmp_path, keydir):
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
    block = verify(theirs, [load_public_key(keydir / "ec.pub.pem")], EC)
    r = espsecure("digest-sbv2-public-key", "--keyfile", keydir / "ec.pem", "--output", tmp_path / "digest.bin")
    assert r.returncode == 0, r.stdout + r.stderr
    assert block.key_digest == (tmp_path / "digest.bin").read_bytes() == key_digest(load_public_key(keydir / "ec.pem"))


def test_an_ecdsa_block_is_no_block_to_a_chip_that_verifies_rsa(keydir):
    data = sign(IMAGE, load_signer(keydir / "ec.pem"))
    with pytest.raises(SignatureBlockError, match=r"no valid RSA-3072 signature block .*\(EC P-256 only\)"):
        verify(data, [load_public_key(keydir / "ec.pem"), load_public_key(keydir / "rsa3072.pem")], RSA)


@pytest.fixture(scope="module")
def signed(keydir):
    return sign(IMAGE[:100], load_signer(keydir / "rsa3072.pem")), [load_public_key(keydir / "rsa3072.pem")]


def test_flips_in_body_and_block_are_rejected(signed):
    data, keys = signed
    # Every byte of the body and of the block's checked part, one bit each.
    for i in [*range(0, 100), *range(SECTOR, SECTOR + 1200)]:
        bad = bytearray(data)
        bad[i] ^= 1 << (i % 8)
        with pytest.raises(SignatureBlockError) as e:
            verify(bytes(bad), keys, RSA)
        assert "\n" not in str(e.value)


def test_wrong_key_and_truncation(signed, keydir):
    data, keys = signed
    with pytest.raises(SignatureBlockError, match="not trusted"):
        verify(data, [load_public_key(keydir / "rsa3072b.pem")], RSA)
    for n in (0, 1, SECTOR - 1, SECTOR, len(data) - 1):
        with pytest.raises(SignatureBlockError):
            verify(data[:n], keys, RSA)
    assert parse(data)[1][0].index == 0 and len(parse(data)[0]) == SECTOR


def test_unsigned_sector_has_no_block(signed):
    data, keys = signed
    with pytest.raises(SignatureBlockError, match="no valid RSA-3072 signature block"):
        verify(data[:SECTOR] + b"\xff" * SECTOR, keys, RSA)


def test_rsa_2048_key_is_refused(keydir):
    with pytest.raises(RigError, match="RSA-3072 or EC P-256 keys; this is an RSA-2048 key"):
        sign(IMAGE, load_signer(keydir / "rsa.pem"))


def test_block_size():
    assert BLOCK_SIZE == 1216


def test_append_signatures_for_key_rotation(tmp_path, keydir):
    """Three keys, three blocks: espsecure accepts the image with each; a fourth does not fit."""
    data = sign(IMAGE, load_signer(keydir / "rsa3072.pem"))
    data = sign(data, load_signer(keydir / "rsa3072b.pem"), append=True)
    r = espsecure("generate-signing-key", "--version", "2", "--scheme", "rsa3072", tmp_path / "k3.pem")
    assert r.returncode == 0, r.stdout + r.stderr
    data = sign(data, load_signer(tmp_path / "k3.pem"), append=True)
    (tmp_path / "signed.bin").write_bytes(data)
    for key in (keydir / "rsa3072.pem", keydir / "rsa3072b.pem", tmp_path / "k3.pem"):
        r = espsecure("verify-signature", "--version", "2", "--keyfile", key, tmp_path / "signed.bin")
        assert r.returncode == 0, r.stdout + r.stderr
        assert verify(data, [load_public_key(key)], RSA).key_digest == key_digest(load_public_key(key))
    assert [b.index for b in parse(data)[1]] == [0, 1, 2]
    with pytest.raises(SignatureBlockError, match="already holds 3 blocks"):
        sign(data, load_signer(keydir / "rsa3072.pem"), append=True)
    with pytest.raises(SignatureBlockError, match="nothing to append to"):
        sign(data[:-SECTOR] + b"\xff" * SECTOR, load_signer(keydir / "rsa3072.pem"), append=True)
