"""`rig delta make|apply|info` through the `rig` entry point, in-process (a fresh interpreter per
call costs over a second of imports; tests/cli covers the console script itself)."""

import hashlib
import json
import subprocess
import sys

import pytest
from delta_pairs import pair


@pytest.fixture
def rig(rig_cli):
    return lambda *args: rig_cli("delta", *args)


@pytest.fixture
def images(tmp_path):
    old, new = pair("blinky")
    (tmp_path / "old.bin").write_bytes(old)
    (tmp_path / "new.bin").write_bytes(new)
    return tmp_path


@pytest.mark.parametrize("native", [[], ["--native"]])
def test_make_apply_info_round_trip(rig, images, native):
    made = rig("make", "--profile", "p1", "--json", images / "old.bin", images / "new.bin", images / "p.rdlt")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["kind"] == "patch"
    applied = rig("apply", *native, images / "old.bin", images / "p.rdlt", images / "out.bin")
    assert applied.returncode == 0, applied.stderr
    assert (images / "out.bin").read_bytes() == (images / "new.bin").read_bytes()
    info = json.loads(rig("info", "--json", images / "p.rdlt").stdout)
    assert (info["kind"], info["profile"]) == ("patch", "p1")
    assert info["new_size"] == (images / "new.bin").stat().st_size
    assert "old sha256" in rig("info", images / "p.rdlt").stdout


@pytest.mark.parametrize("native", [[], ["--native"]])
@pytest.mark.parametrize("damage, words", [("truncate", "truncated"), ("wrong-source", "wrong source")])
def test_refusal_is_one_line_exit_2_and_writes_nothing(rig, images, native, damage, words):
    assert rig("make", images / "old.bin", images / "new.bin", images / "p.rdlt").returncode == 0
    patch, old = images / "p.rdlt", images / "old.bin"
    if damage == "truncate":
        patch.write_bytes(patch.read_bytes()[:-10])
    else:
        old = images / "new.bin"
    result = rig("apply", *native, old, patch, images / "out.bin")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("rig: error: ") and words in result.stderr
    assert not (images / "out.bin").exists()


def test_a_patch_that_does_not_pay_is_written_as_a_full_image_apply_takes(rig, images):
    # Another product's image: the patch loses to the new image compressed, and what make writes
    # must still be something apply (and a device) takes.
    other = b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest()[:4] * 2 for i in range(8000))
    (images / "other.bin").write_bytes(other)
    made = rig("make", "--json", images / "old.bin", images / "other.bin", images / "p.rdlt")
    assert made.returncode == 0, made.stderr
    summary = json.loads(made.stdout)
    assert summary["kind"] == "full" and summary["written_size"] == summary["full_size"] <= summary["patch_size"]
    assert summary["written_size"] < len(other)
    for native in ([], ["--native"]):
        applied = rig("apply", *native, images / "old.bin", images / "p.rdlt", images / "out.bin")
        assert applied.returncode == 0, applied.stderr
        assert (images / "out.bin").read_bytes() == other
    assert json.loads(rig("info", "--json", images / "p.rdlt").stdout)["kind"] == "full"
    assert "full image" in rig("make", images / "old.bin", images / "other.bin", images / "p.rdlt").stdout


def test_help_teaches_profiles_and_kinds(rig):
    result = rig("--help")
    assert result.returncode == 0 and "p1" in result.stdout and "STM32L0" in result.stdout
    assert 'kind "full"' in rig("make", "--help").stdout


def test_console_script_exits_2_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rig", "delta", "info", str(tmp_path / "missing.rdlt")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("rig: error: cannot read patch") and result.stderr.count("\n") == 1
