"""Corrupt, truncated and wrong-source patches are refused by both appliers with one clear line."""

import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rig import delta
from rig.delta import container, native
from rig.errors import RigError

APPLIERS = {"python": delta.apply, "c": native.apply}


def _refused(applier, old, patch, *words):
    with pytest.raises(RigError) as exc:
        APPLIERS[applier](old, patch)
    line = str(exc.value)
    assert "\n" not in line and any(w in line for w in words), line


@pytest.mark.parametrize("applier", APPLIERS)
def test_wrong_source_is_refused(applier, blinky_p2):
    old, new, d = blinky_p2
    _refused(applier, new, d.data, "wrong source")
    _refused(applier, old[:-1] + bytes([old[-1] ^ 1]), d.data, "wrong source")


@pytest.mark.parametrize("applier", APPLIERS)
@pytest.mark.parametrize("cut", [0, 10, container.HEADER_SIZE - 1, container.HEADER_SIZE, 200, -1])
def test_truncated_patch_is_refused(applier, cut, blinky_p1):
    old, _, d = blinky_p1
    _refused(applier, old, d.data[:cut], "truncated", "not a rig delta patch")


@pytest.mark.parametrize("applier", APPLIERS)
@pytest.mark.parametrize("where", [0, 5, 12, 40, container.HEADER_SIZE + 7, -1])
def test_flipped_byte_is_refused(applier, where, blinky_p2):
    old, _, d = blinky_p2
    bad = bytearray(d.data)
    bad[where] ^= 0x40
    _refused(applier, old, bytes(bad), "corrupt", "not a rig delta patch")


def _with_payload(header: container.Header, payload: bytes) -> bytes:
    # A well-framed patch around arbitrary payload bytes: gets past the CRCs into the decoders.
    fields = {**header.__dict__, "payload_size": len(payload), "payload_crc32": zlib.crc32(payload)}
    return container.Header(**fields).pack() + payload


@pytest.mark.parametrize("applier", APPLIERS)
@pytest.mark.parametrize("profile", ["p1", "p2"])
def test_tampered_payload_with_fixed_crcs_is_refused(applier, profile, blinky_p1, blinky_p2):
    old, _, d = blinky_p1 if profile == "p1" else blinky_p2
    header = container.parse(d.data)
    payload = bytearray(d.data[container.HEADER_SIZE :])
    payload[len(payload) // 2] ^= 0x01
    _refused(applier, old, _with_payload(header, bytes(payload)), "corrupt", "truncated")


@given(st.binary(max_size=400))
def test_random_bytes_raise_only_rig_error(data):
    for applier in APPLIERS.values():
        with pytest.raises(RigError):
            applier(b"old", data)


@given(payload=st.binary(max_size=300), codec=st.sampled_from([1, 2]), stream=st.integers(0, 5000),
       new_size=st.integers(0, 3000), full=st.booleans())
def test_random_payloads_behind_valid_headers_raise_only_rig_error(blinky_p2, payload, codec, stream, new_size, full):
    old = blinky_p2[0]
    header = container.parse(blinky_p2[2].data)
    fields = {**header.__dict__, "codec": codec, "codec_param": {1: 0x87, 2: 1}[codec],
              "stream_size": stream, "new_size": new_size}
    if full:  # a well-formed full-image header: the payload is decoded straight into the image
        fields.update(kind=container.KIND_FULL, old_size=0, old_sha256=container.NO_SOURCE, stream_size=new_size)
    patch = _with_payload(container.Header(**fields), payload)
    for applier in APPLIERS.values():
        try:
            result = applier(old, patch)
        except RigError:
            continue
        # Random bytes can only pass if they really rebuild an image with the promised SHA-256.
        assert len(result) == new_size


def test_header_fields_are_little_endian_at_the_documented_offsets(blinky_p1):
    old, new, d = blinky_p1
    magic, version, codec, param, kind = struct.unpack_from("<4sBBBB", d.data)
    old_size, new_size = struct.unpack_from("<II", d.data, 8)
    assert (magic, version, codec, param, kind) == (b"RDLT", 2, 1, 0x87, 0)
    assert (old_size, new_size) == (len(old), len(new))
