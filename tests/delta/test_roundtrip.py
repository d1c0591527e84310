"""Every pair, both profiles: the C applier and the Python applier rebuild the exact image."""

import hashlib

import pytest
from delta_pairs import PAIR_NAMES, made

from rig import delta
from rig.delta import native


@pytest.mark.parametrize("profile", ["p1", "p2"])
@pytest.mark.parametrize("name", PAIR_NAMES)
def test_both_appliers_rebuild_the_new_image(name, profile):
    old, new, d = made(name, profile)
    assert d.data[:4] == b"RDLT"
    assert delta.apply(old, d.data) == new
    assert native.apply(old, d.data) == new
    assert native.apply(old, d.data, page_size=128) == new  # STM32L0 page size


@pytest.mark.parametrize("profile", ["p1", "p2"])
def test_info_reports_the_header(profile, blinky_p1, blinky_p2):
    old, new, d = blinky_p1 if profile == "p1" else blinky_p2
    fields = delta.info(d.data)
    assert (fields["kind"], fields["profile"], fields["format_version"]) == ("patch", profile, 2)
    assert (fields["old_size"], fields["new_size"]) == (len(old), len(new))
    assert fields["old_sha256"] == hashlib.sha256(old).hexdigest()
    assert fields["new_sha256"] == hashlib.sha256(new).hexdigest()
    assert fields["size"] == len(d.data) == d.patch_size < d.full_size


@pytest.mark.parametrize("profile", ["p1", "p2"])
@pytest.mark.parametrize("old, new", [(b"", b"fresh image"), (b"old image", b""), (b"same", b"same")])
def test_edge_sizes(profile, old, new):
    d = delta.make(old, new, profile)
    assert delta.apply(old, d.data) == new == native.apply(old, d.data)
