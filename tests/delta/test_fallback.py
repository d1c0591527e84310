"""What `make` ships is always a container both appliers take, and never more than the full image.

When a patch does not beat the new image compressed with the profile's codec, the container
carries that compressed image (kind "full", no old image): the device applies it with the same
streaming applier, in the same RAM, whatever its running slot holds.
"""

import hashlib
import struct
import zlib

import pytest
from delta_pairs import made, pair
from hypothesis import given
from hypothesis import strategies as st

from rig import delta
from rig.delta import codecs, container, native
from rig.errors import RigError

APPLIERS = {"python": delta.apply, "c": native.apply}


def full_image_bound(new: bytes, profile: str) -> int:
    """The compressed full image plus the container header: what make() may never exceed."""
    return container.HEADER_SIZE + len(codecs.COMPRESS[container.PROFILES[profile]](new))


def unrelated(n: int, seed: bytes = b"") -> bytes:
    """Code-like bytes that share nothing with other images: a patch cannot pay."""
    return b"".join(hashlib.sha256(seed + i.to_bytes(4, "little")).digest()[:4] * 2 for i in range(n // 8))


@st.composite
def image_pairs(draw):
    old = draw(st.binary(max_size=3000))
    if draw(st.booleans()):
        return old, draw(st.binary(max_size=3000))
    # A release of old: a few spans replaced, inserted or cut, where a patch usually pays.
    new = bytearray(old)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(new)))
        cut = draw(st.integers(0, 40))
        new[at : at + cut] = draw(st.binary(max_size=40))
    return old, bytes(new)


@given(pair=image_pairs(), profile=st.sampled_from(["p1", "p2"]))
def test_any_pair_round_trips_through_both_appliers_within_the_full_image_size(pair, profile):
    old, new = pair
    d = delta.make(old, new, profile)
    assert d.data[:4] == container.MAGIC and delta.info(d.data)["kind"] == d.kind
    assert delta.apply(old, d.data) == new
    assert native.apply(old, d.data) == new
    assert native.apply(old, d.data, page_size=128) == new
    assert len(d.data) == min(d.patch_size, d.full_size) <= full_image_bound(new, profile)


@pytest.mark.parametrize("profile", ["p1", "p2"])
@pytest.mark.parametrize("name", ["stm32l0 -Os->-O2", "stm32h7 -Os->-O2"])
def test_a_compiler_flag_change_ships_a_container_smaller_than_the_raw_image(name, profile):
    old, new, d = made(name, profile)
    assert old != new
    for applier in APPLIERS.values():
        assert applier(old, d.data) == new
    assert len(d.data) <= full_image_bound(new, profile) and len(d.data) < len(new)


@pytest.mark.parametrize("profile", ["p1", "p2"])
def test_a_patch_that_does_not_pay_ships_the_compressed_image_without_its_source(profile):
    old, _ = pair("blinky")
    new = unrelated(60_000)
    d = delta.make(old, new, profile)
    assert d.kind == "full" and d.full_size <= d.patch_size and len(d.data) == d.full_size
    fields = delta.info(d.data)
    assert (fields["kind"], fields["old_size"], fields["old_sha256"]) == ("full", None, None)
    # No reference to the old image: any running slot will do, an erased one included.
    for running in (old, b"", b"\xff" * 4096):
        for applier in APPLIERS.values():
            assert applier(running, d.data) == new


@pytest.mark.parametrize("applier", APPLIERS)
def test_a_version_1_patch_still_applies(applier):
    old, new, d = made("blinky", "p2")
    assert d.kind == "patch"
    body = bytearray(d.data[: container.HEADER_SIZE - 4])
    body[4] = 1  # version 1: byte 7 was reserved and 0, the rest is the same
    patch = bytes(body) + struct.pack("<I", zlib.crc32(body)) + d.data[container.HEADER_SIZE :]
    assert delta.info(patch)["format_version"] == 1
    assert APPLIERS[applier](old, patch) == new


def _reheader(data: bytes, **changes) -> bytes:
    h = container.parse(data)
    return container.Header(**{**h.__dict__, **changes}).pack() + data[container.HEADER_SIZE :]


@pytest.mark.parametrize("applier", APPLIERS)
@pytest.mark.parametrize("change", [
    {"old_size": 1},  # a full image that names an old image
    {"old_sha256": b"\x01" * 32},
    {"stream_size": 1},  # and a stream that is not the image
    {"kind": 2},  # a kind no applier knows
])
def test_an_inconsistent_full_image_header_is_refused(applier, change):
    full = delta.make(b"", unrelated(4000), "p2")
    assert full.kind == "full"
    with pytest.raises(RigError, match="not a rig delta patch|corrupt"):
        APPLIERS[applier](b"", _reheader(full.data, **change))


@pytest.mark.parametrize("applier", APPLIERS)
def test_a_patch_relabelled_as_a_full_image_is_refused(applier):
    old, new, d = made("blinky", "p2")
    h = container.parse(d.data)
    relabelled = _reheader(d.data, kind=container.KIND_FULL, old_size=0, old_sha256=container.NO_SOURCE,
                           stream_size=h.new_size)
    with pytest.raises(RigError):
        APPLIERS[applier](old, relabelled)
