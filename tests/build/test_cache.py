"""rig.build.cache: one build per variant, version, fault and defect, the same bytes as `rig build`,
kept and served again until something that changes the bytes changes."""

import os

import pytest

from rig.build import cache
from rig.errors import RigError


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "rig" / "firmware"


def test_a_cached_build_is_rig_builds_bytes_and_is_built_once(built, cache_home):
    out, _, _ = built
    first = cache.app("stm32l0", "1.2.3+4", "no-confirm")
    assert first.bin.read_bytes() == (out / "rig-stm32l0-no-confirm.bin").read_bytes()
    assert first.elf.read_bytes() == (out / "rig-stm32l0-no-confirm.elf").read_bytes()
    stamp = first.bin.stat().st_mtime_ns
    again = cache.app("stm32l0", "1.2.3+4", "no-confirm")
    assert again == first and again.bin.stat().st_mtime_ns == stamp  # served, not rebuilt
    other = cache.app("stm32l0", "1.2.4", "no-confirm", defect="confirm-not-persisted")
    assert other.bin.parent != first.bin.parent and other.bin.name == "rig-stm32l0-no-confirm.confirm-not-persisted.bin"
    assert sorted(os.listdir(cache_home)) == sorted([first.bin.parent.name, other.bin.parent.name])  # no scratch left


@pytest.mark.parametrize("args, says", [
    (("esp32", "1.0.0"), "runs no rig C firmware"),
    (("stm32h7", "1.0.0", "sideways"), "fault mode 'sideways' unknown"),
    (("stm32h7", "1.0.0", "none", "nope"), "defect 'nope' unknown"),
    (("stm32h7", "one"), "version"),
])
def test_bad_requests_are_one_line(cache_home, args, says):
    with pytest.raises(RigError, match=says):
        cache.app(*args)
    assert not cache_home.exists() or not any(cache_home.iterdir())
