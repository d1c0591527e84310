"""Pairs from `rig build` (two versions of the reference firmware), each with its part's profile."""

import pytest

from rig import delta
from rig.build import build
from rig.delta import native
from rig.variants import facts

VARIANTS = ("stm32l0", "stm32h7", "esp32")


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    root = tmp_path_factory.mktemp("releases")
    results = {v: build(root / v, variants=VARIANTS, version=v, faults=("none",)) for v in ("1.0.0", "1.1.0")}
    apps = {a["variant"]: a["file"] for a in results["1.1.0"].artifacts if a["kind"] == "app"}
    return {variant: ((root / "1.0.0" / f).read_bytes(), (root / "1.1.0" / f).read_bytes())
            for variant, f in apps.items()}


@pytest.mark.parametrize("variant", VARIANTS)
def test_release_pair_round_trips(releases, variant):
    old, new = releases[variant]
    assert old != new
    d = delta.make(old, new, facts(variant).delta_profile)
    # A version bump changes a few bytes: the patch beats even the mostly-padding ESP32 app compressed.
    assert d.kind == "patch" and d.patch_size < d.full_size
    assert delta.apply(old, d.data) == new
    assert native.apply(old, d.data, page_size=128) == new
