"""MCUboot images: imgtool accepts ours, we accept imgtool's, and every tampering is one clear line."""

import hashlib
import os
import struct

import pytest

from rig.errors import RigError
from rig.image import mcuboot
from rig.image.keys import load_public_key, load_signer
from rig.image.layouts import LAYOUTS
from rig.image.mcuboot import ImageError, Version, parse, sign, verify
from rig.image.trailer import Flag, Magic, Trailer

PAYLOAD = os.urandom(3000)
H7 = Trailer.for_layout(LAYOUTS["stm32h743-2x1m"], "slot1")
L0 = Trailer.for_layout(LAYOUTS["stm32l073-192k"], "slot1")


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg
    return msg


def with_tlvs(image: bytes, tlvs: list[tuple[int, bytes]]) -> bytes:
    """The image with its unprotected TLV area replaced (what an attacker can edit freely)."""
    img = parse(image)
    start = img.header_size + img.img_size + img.protect_tlv_size
    body = b"".join(struct.pack("<HH", t, len(v)) + v for t, v in tlvs)
    return image[:start] + struct.pack("<HH", 0x6907, 4 + len(body)) + body


@pytest.mark.parametrize("keyname", ["ec", "rsa"])
@pytest.mark.parametrize("mode, trailer", [("plain", H7), ("pad", H7), ("confirm", H7), ("pad", L0), ("confirm", L0)],
                         ids=["plain", "pad-h7", "confirm-h7", "pad-l0", "confirm-l0"])
def test_imgtool_verifies_ours(tmp_path, keydir, imgtool, keyname, mode, trailer):
    signer = load_signer(keydir / f"{keyname}.pem")
    out = sign(PAYLOAD, signer, "1.2.3+4", security_counter=5,
               pad_to_slot=None if mode == "plain" else trailer, confirm=mode == "confirm")
    (tmp_path / "img.bin").write_bytes(out)
    r = imgtool("verify", "-k", keydir / f"{keyname}.pem", tmp_path / "img.bin")
    assert r.returncode == 0 and "correctly validated" in r.stdout and "1.2.3+4" in r.stdout, r.stdout + r.stderr
    # ... and the public key alone is enough for us.
    img = verify(out, [load_public_key(keydir / f"{keyname}.pub.pem")], min_security_counter=5,
                 slot_size=trailer.max_image_size)
    assert (img.version, img.security_counter, img.payload) == (Version(1, 2, 3, 4), 5, PAYLOAD)
    if mode != "plain":
        state = trailer.read(out)
        assert len(out) == trailer.slot_size and state.magic is Magic.GOOD
        assert state.image_ok is (Flag.SET if mode == "confirm" else Flag.UNSET)


@pytest.mark.parametrize("keyname", ["ec", "rsa"])
def test_same_bytes_as_imgtool_but_the_signature(tmp_path, keydir, imgtool, keyname):
    """Everything up to the signature value, and the padded tail, is byte for byte imgtool's."""
    (tmp_path / "app.bin").write_bytes(PAYLOAD)
    t = L0
    r = imgtool("sign", "-k", keydir / f"{keyname}.pem", "-v", "1.2.3+4", "-s", 9, "-H", 0x200, "--pad-header",
                "--confirm", "-S", t.slot_size, "--align", t.write_size, "-M", t.max_sectors, "-R", "0",
                tmp_path / "app.bin", tmp_path / "theirs.bin")
    assert r.returncode == 0, r.stderr
    theirs = (tmp_path / "theirs.bin").read_bytes()
    ours = sign(PAYLOAD, load_signer(keydir / f"{keyname}.pem"), "1.2.3+4", security_counter=9,
                pad_to_slot=t, confirm=True)
    a, b = parse(ours), parse(theirs)
    hashed = a.header_size + a.img_size + a.protect_tlv_size
    assert ours[:hashed] == theirs[:hashed]
    # ECDSA DER signatures vary in length (70-72 bytes) and RSA-PSS is salted: compare the rest.
    assert [(t.type, t.value) for t in a.tlvs[:-1]] == [(t.type, t.value) for t in b.tlvs[:-1]]
    assert a.tlvs[-1].type == b.tlvs[-1].type
    tail = t.slot_size - max(a.size, b.size)
    assert len(ours) == len(theirs) == t.slot_size and ours[-tail:] == theirs[-tail:]


@pytest.mark.parametrize("keyname", ["ec", "rsa"])
@pytest.mark.parametrize("extra", [[], ["--pad", "-S", 0x20000, "-s", 3], ["--public-key-format", "full"]],
                         ids=["plain", "pad-seccnt", "pubkey"])
def test_we_verify_imgtool_images(tmp_path, keydir, imgtool, keyname, extra):
    (tmp_path / "app.bin").write_bytes(PAYLOAD)
    if "-S" not in extra:
        extra = [*extra, "-S", 0x20000]
    r = imgtool("sign", "-k", keydir / f"{keyname}.pem", "-v", "2.0.1", "-H", 0x200, "--pad-header", *extra,
                tmp_path / "app.bin", tmp_path / "img.bin")
    assert r.returncode == 0, r.stderr
    img = verify((tmp_path / "img.bin").read_bytes(), [load_public_key(keydir / f"{keyname}.pem")])
    assert img.version == Version(2, 0, 1, 0) and img.payload == PAYLOAD
    assert img.security_counter == (3 if "-s" in extra else None)


@pytest.fixture(scope="module")
def signed(keydir):
    """A small ECDSA image with a security counter, and its trusted key."""
    image = sign(os.urandom(64), load_signer(keydir / "ec.pem"), "1.0.0", security_counter=2, header_size=0x80)
    return image, [load_public_key(keydir / "ec.pub.pem")]


def flip_every_bit(image: bytes, keys) -> set[str]:
    """Verify the image with each bit flipped in turn; every one must fail. Returns the checks that fired."""
    messages = set()
    for i in range(len(image)):
        for bit in range(8):
            bad = bytearray(image)
            bad[i] ^= 1 << bit
            with pytest.raises(ImageError) as e:
                verify(bytes(bad), keys)
            messages.add(one_line(e).split(":")[0])
    return messages


def test_every_bit_flip_is_rejected(signed):
    messages = flip_every_bit(*signed)
    # The flips land in different checks: magic, bounds, hash, key hash, signature...
    assert {"not an MCUboot image", "hash mismatch", "unknown key hash", "bad signature"} <= messages


@pytest.mark.nightly
def test_every_bit_flip_of_a_full_rsa_image_is_rejected(keydir):
    image = sign(os.urandom(4096), load_signer(keydir / "rsa.pem"), "1.0.0", security_counter=2)
    assert "bad signature" in flip_every_bit(image, [load_public_key(keydir / "rsa.pub.pem")])
    for n in range(len(image)):
        with pytest.raises(ImageError):
            verify(image[:n], [load_public_key(keydir / "rsa.pub.pem")])


def test_every_truncation_is_rejected(signed):
    image, keys = signed
    for n in range(len(image)):
        with pytest.raises(ImageError) as e:
            verify(image[:n], keys)
        one_line(e)


def test_wrong_key_is_unknown_key_hash(signed, keydir):
    image, _ = signed
    for other in ("ec2.pem", "rsa.pem"):
        with pytest.raises(ImageError, match="unknown key hash") as e:
            verify(image, [load_public_key(keydir / other)])
        one_line(e)


def test_forged_key_hash_is_bad_signature(keydir, signed):
    """Signed by ec2, but its KEYHASH rewritten to name the trusted key: the signature fails."""
    _, keys = signed
    image = sign(PAYLOAD, load_signer(keydir / "ec2.pem"), "1.0.0")
    img = parse(image)
    forged = with_tlvs(image, [(t.type, keys[0].keyhash if t.type == 0x01 else t.value) for t in img.tlvs])
    with pytest.raises(ImageError, match="bad signature"):
        verify(forged, keys)


def test_missing_signature_and_key_hash(signed):
    image, keys = signed
    tlvs = [(t.type, t.value) for t in parse(image).tlvs]
    with pytest.raises(ImageError, match="missing signature"):
        verify(with_tlvs(image, [t for t in tlvs if t[0] != 0x22]), keys)
    with pytest.raises(ImageError, match="no KEYHASH"):
        verify(with_tlvs(image, [t for t in tlvs if t[0] != 0x01]), keys)
    with pytest.raises(ImageError, match="no SHA256"):
        verify(with_tlvs(image, [t for t in tlvs if t[0] != 0x10]), keys)


def test_security_counter_floor(signed, keydir):
    image, keys = signed
    assert verify(image, keys, min_security_counter=2).security_counter == 2
    with pytest.raises(ImageError, match="security counter 2 is below the floor 3") as e:
        verify(image, keys, min_security_counter=3)
    one_line(e)
    unprotected = sign(PAYLOAD, load_signer(keydir / "ec.pem"), "1.0.0")
    with pytest.raises(ImageError, match="no protected security counter"):
        verify(unprotected, keys, min_security_counter=0)


def test_security_counter_outside_protected_area_is_refused(signed):
    image, keys = signed
    tlvs = [(t.type, t.value) for t in parse(image).tlvs] + [(0x50, struct.pack("<I", 99))]
    with pytest.raises(ImageError, match="SEC_CNT outside the protected area"):
        verify(with_tlvs(image, tlvs), keys)


def test_too_big_for_slot(signed):
    image, keys = signed
    with pytest.raises(ImageError, match="too big for its slot") as e:
        verify(image, keys, slot_size=len(image) - 1)
    one_line(e)
    assert verify(image, keys, slot_size=len(image))


def test_sign_refuses_what_cannot_fit_or_mean(keydir):
    signer = load_signer(keydir / "ec.pem")
    tiny = Trailer(8192, 4, 0xFF, 8)
    with pytest.raises(RigError, match="too big for the slot"):
        sign(os.urandom(8000), signer, "1.0.0", pad_to_slot=tiny)
    with pytest.raises(RigError, match="need padding"):
        sign(PAYLOAD, signer, "1.0.0", confirm=True)
    with pytest.raises(RigError, match="not both"):
        sign(PAYLOAD, signer, "1.0.0", pad_to_slot=tiny, confirm=True, test=True)
    with pytest.raises(RigError, match="header size"):
        sign(PAYLOAD, signer, "1.0.0", header_size=16)


@pytest.mark.parametrize("text", ["1.2", "1.2.3.4", "256.0.0", "1.0.65536", "v1.0.0", "1.0.0+4294967296"])
def test_bad_versions(text):
    with pytest.raises(RigError, match="version"):
        Version.parse(text)


def test_version_text():
    assert str(Version.parse("1.2.3")) == "1.2.3+0" and str(Version.parse(" 255.255.65535+7 ")) == "255.255.65535+7"


def test_parse_reports_layout(signed):
    image, _ = signed
    img = parse(image + b"\xff" * 100)  # trailing fill (a padded slot) is not part of the image
    assert img.size == len(image) and img.payload_range == (0x80, 0x80 + 64)
    assert hashlib.sha256(image[: img.header_size + img.img_size + img.protect_tlv_size]).digest() == \
        img.find(0x10)[0].value
    d = img.to_dict()
    assert d["security_counter"] == 2 and [t["name"] for t in d["tlvs"]] == ["SHA256", "KEYHASH", "ECDSASIG"]


def test_imgtool_crashes_where_we_report(tmp_path, keydir, imgtool, signed):
    """The reason we parse ourselves: imgtool verify raises a Python traceback on a cut image."""
    image, keys = signed
    cut = image[: parse(image).size - 40]
    (tmp_path / "cut.bin").write_bytes(cut)
    r = imgtool("verify", "-k", keydir / "ec.pem", tmp_path / "cut.bin")
    assert r.returncode != 0
    with pytest.raises(ImageError, match="truncated"):
        verify(cut, keys)
    assert mcuboot.ImageError.__mro__[1] is RigError


def test_encrypted_images_are_named_not_miscalled_altered(signed):
    image, keys = signed
    flagged = bytearray(image)
    flagged[16] |= 0x04  # ENCRYPTED_AES128
    with pytest.raises(ImageError, match="encrypted image .flags ENCRYPTED_AES128."):
        verify(bytes(flagged), keys)
