"""Every shipped pair, both profiles: the C applier and the Python applier rebuild the exact image."""

import hashlib

import pytest
from delta_pairs import SHIPPED, made

from rig import delta
from rig.delta import native


@pytest.mark.parametrize("profile", ["p1", "p2"])
@pytest.mark.parametrize("name", SHIPPED)
def test_both_appliers_rebuild_the_new_image(name, profile):
    old, new, d = made(name, profile)
    assert d.kind == "patch"
    assert d.data[:4] == b"RDLT"
    assert delta.apply(old, d.data) == new
    assert native.apply(old, d.data) == new
    assert native.apply(old, d.data, page_size=128) == new  # STM32L0 page size


@pytest.mark.parametrize("profile", ["p1", "p2"])
def test_info_reports_the_header(profile, blinky_p1, blinky_p2):
    old, new, d = blinky_p1 if profile == "p1" else blinky_p2
    fields = delta.info(d.data)
    assert fields["profile"] == profile
    assert (fields["old_size"], fields["new_size"]) == (len(old), len(new))
    assert fields["new_sha256"] == hashlib.sha256(new).hexdigest()
    assert fields["patch_size"] == len(d.data) == d.patch_size


def test_a_patch_that_does_not_pay_ships_the_full_image():
    unrelated_old = hashlib.sha256(b"a").digest() * 2000
    new = b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest()[:8] for i in range(8000))
    d = delta.make(unrelated_old, new, "p1")
    assert d.kind == "full" and d.data == new
    assert d.patch_size > delta.FULL_IMAGE_THRESHOLD * d.full_compressed_size


@pytest.mark.parametrize("profile", ["p1", "p2"])
@pytest.mark.parametrize("old, new", [(b"", b"fresh image"), (b"old image", b""), (b"same", b"same")])
def test_edge_sizes(profile, old, new):
    d = delta.make(old, new, profile)
    data = d.data
    if d.kind == "patch":
        assert delta.apply(old, data) == new == native.apply(old, data)
    else:
        assert data == new
