"""Every parser meets random and mutated input with our one-line error, never anything else."""

import struct
import zlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rig.errors import RigError
from rig.image import mcuboot, sbv2
from rig.image.keys import RSA_3072, PemSigner, Pkcs11Uri, PublicKey
from rig.image.layouts import LAYOUTS
from rig.image.trailer import Trailer

TRAILERS = [Trailer.for_layout(LAYOUTS["stm32h743-2x1m"], "slot1"), Trailer.for_layout(LAYOUTS["stm32l073-192k"]),
            Trailer(4096, 1, 0xFF, 4), Trailer(4096, 8, 0x00, 4, 16)]


class _Signer(PemSigner):
    """A PEM signer made in memory, so module constants need no key file."""

    def __init__(self, key):
        self.source = "memory"
        self._key = key
        self.public = PublicKey.of(self._key.public_key(), self.source)


SIGNER = _Signer(ec.generate_private_key(ec.SECP256R1()))
KEYS = [SIGNER.public]
SB_SIGNER = _Signer(rsa.generate_private_key(public_exponent=65537, key_size=3072))  # the ESP32's scheme
SB_KEYS = [SB_SIGNER.public]
SB_KINDS = (RSA_3072,)
PAYLOAD = bytes(range(256)) * 2
IMAGE = mcuboot.sign(PAYLOAD, SIGNER, "1.2.3+4", security_counter=7, header_size=0x40)
SBV2 = sbv2.sign(PAYLOAD, SB_SIGNER)
nothing_but_ours = settings(suppress_health_check=[HealthCheck.too_slow])


def only_rig_errors(fn, *args):
    try:
        return fn(*args)
    except RigError as e:
        assert str(e) and "\n" not in str(e)
        return None


# A mutation: replace a byte, insert bytes, delete a range, or cut the tail off.
mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 8)),
    st.tuples(st.just("cut"), st.integers(0, 10_000), st.none()),
)


def mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op, pos, arg in ops:
        pos %= len(b) + 1
        if op == "set" and pos < len(b):
            b[pos] = arg
        elif op == "insert":
            b[pos:pos] = arg
        elif op == "delete":
            del b[pos : pos + arg]
        elif op == "cut":
            del b[pos:]
    return bytes(b)


@nothing_but_ours
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    only_rig_errors(mcuboot.parse, data)
    only_rig_errors(mcuboot.verify, data, KEYS, 0, 4096)
    only_rig_errors(sbv2.verify, data, SB_KEYS, SB_KINDS)
    for t in TRAILERS:
        only_rig_errors(t.read, data)


@nothing_but_ours
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF_FFFF), st.binary(max_size=1024))
def test_random_header_fields_behind_a_good_magic(hdr_size, prot_size, img_size, rest):
    data = struct.pack("<IIHHI", mcuboot.IMAGE_MAGIC, 0, hdr_size, prot_size, img_size) + rest
    only_rig_errors(mcuboot.verify, data, KEYS)


@nothing_but_ours
@given(st.lists(mutation, min_size=1, max_size=4))
def test_mutated_mcuboot_images(ops):
    data = mutate(IMAGE, ops)
    img = only_rig_errors(mcuboot.verify, data, KEYS, 7)
    if img is not None:  # accepted: then what was signed is exactly what we get
        assert data[: img.size] == IMAGE


@nothing_but_ours
@given(st.lists(mutation, min_size=1, max_size=4))
def test_mutated_sbv2_images(ops):
    data = mutate(SBV2, ops)
    if only_rig_errors(sbv2.verify, data, SB_KEYS, SB_KINDS) is not None:
        assert data[: len(SBV2) - sbv2.SECTOR + sbv2.BLOCK_SIZE] == SBV2[: len(SBV2) - sbv2.SECTOR + sbv2.BLOCK_SIZE]


@nothing_but_ours
@given(st.binary(min_size=1196, max_size=1196), st.sampled_from([(0x03, 0, 2), (0x02, 0, 0), (0x03, 1, 3)]))
def test_sbv2_blocks_with_good_crc_and_random_contents(raw, kind):
    block = bytearray(raw)
    block[0], block[1], block[2] = sbv2.MAGIC, kind[0], kind[1]
    block[36] = kind[2]
    block += struct.pack("<I", zlib.crc32(block)) + bytes(16)
    data = SBV2[: -sbv2.SECTOR] + bytes(block) + b"\xff" * (sbv2.SECTOR - sbv2.BLOCK_SIZE)
    with pytest.raises(RigError):
        sbv2.verify(data, SB_KEYS, SB_KINDS)
    # What the bootloader model does with a block whose key digest is the burnt one.
    only_rig_errors(lambda: [b.public_key() for b in sbv2.parse(data)[1]])


@nothing_but_ours
@given(st.sampled_from(TRAILERS), st.lists(st.tuples(st.integers(1, 600), st.integers(0, 255)), max_size=20))
def test_trailers_with_random_bytes_near_the_end(t, pokes):
    slot = bytearray([t.erased]) * t.slot_size
    for back, value in pokes:
        slot[-back] = value
    state = t.read(bytes(slot))  # any content decodes to a state, never an exception
    for action in (t.mark_test, t.mark_permanent, t.confirm):
        only_rig_errors(action, state)


@nothing_but_ours
@given(st.text(max_size=40))
def test_version_and_key_uri_text(text):
    v = only_rig_errors(mcuboot.Version.parse, text)
    if v is not None:
        assert mcuboot.Version.parse(str(v)) == v
    uri = only_rig_errors(Pkcs11Uri.parse, "pkcs11:" + text)
    if uri is not None:
        assert uri.token is not None and uri.module_path is not None
