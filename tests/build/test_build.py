"""`rig build`: reproducible bytes, the manifest, descriptors, size figures and one-line errors."""

import hashlib
import sys

import pytest

from rig.build import build, manifest
from rig.cli import main
from rig.errors import RigError
from rig.image import appdesc
from rig.image.keys import load_public_key
from rig.sim.flash import Flash
from rig.sim.stm32 import vmcuboot
from rig.variants import NAMES as VARIANTS
from rig.variants import Family, facts


def test_manifest_lists_every_variant_and_fault(built):
    out, manifest, _ = built
    apps = {(a["variant"], a["fault"]) for a in manifest["artifacts"] if a["kind"] == "app"}
    assert apps == {(v, f) for v in VARIANTS for f in appdesc.FAULTS}
    assert [a["file"] for a in manifest["artifacts"] if a["kind"] == "bootloader"] == ["rig-esp32-bootloader.bin"]
    for a in manifest["artifacts"]:
        data = (out / a["file"]).read_bytes()
        assert a["size"] == len(data)
        assert a["sha256"] == hashlib.sha256(data).hexdigest()
        assert a["version"] == "1.2.3+4"
    assert manifest["version"] == "1.2.3+4" and manifest["cflags"] == []
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no scratch left behind


def test_descriptor_at_its_offset_in_every_binary(built):
    out, manifest, _ = built
    for a in manifest["artifacts"]:
        if a["kind"] != "app":
            continue
        desc = appdesc.find((out / a["file"]).read_bytes(), a["variant"])
        assert (desc.variant, desc.fault, desc.version) == (a["variant"], a["fault"], (1, 2, 3, 4))


def test_size_figures_printed(built):
    _, manifest, stdout = built
    assert "arm-none-eabi-size" in stdout
    for a in manifest["artifacts"]:
        if facts(a["variant"]).family is Family.STM32:  # built with arm-none-eabi-gcc; the ESP32's is generated
            assert a["sizes"]["text"] > 0 and a["sizes"]["text"] <= a["size"]
            assert a["variant"] in stdout


def test_second_build_gives_identical_bytes(built, tmp_path, monkeypatch):
    out, manifest, _ = built
    # Another directory, another working directory, given relative to it: paths must not reach the bytes.
    monkeypatch.chdir(tmp_path)
    again = build("again", variants=("stm32l0", "esp32"), version="1.2.3+4", faults=("none", "hang"))
    assert len(again.artifacts) == 5
    for a in again.artifacts:
        assert (tmp_path / "again" / a["file"]).read_bytes() == (out / a["file"]).read_bytes(), a["file"]
        if "elf" in a:
            assert (tmp_path / "again" / a["elf"]).read_bytes() == (out / a["elf"]).read_bytes(), a["elf"]


def test_extra_compiler_flags_change_the_code_and_are_recorded(built, tmp_path):
    out, _, _ = built
    o2 = build(tmp_path / "o2", variants=("stm32l0",), version="1.2.3+4", faults=("none",), cflags=("-O2",))
    assert manifest.load(tmp_path / "o2")["cflags"] == ["-O2"]
    (app,) = o2.artifacts
    assert (tmp_path / "o2" / app["file"]).read_bytes() != (out / app["file"]).read_bytes()
    assert appdesc.find((tmp_path / "o2" / app["file"]).read_bytes(), "stm32l0").version == (1, 2, 3, 4)


def run_main(monkeypatch, capsys, *args):
    """`rig ARGS` in this process (the CLI's entry point, its exit status and its stderr)."""
    monkeypatch.setattr(sys, "argv", ["rig", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err


def test_bad_version_is_one_line(tmp_path, monkeypatch, capsys):
    code, stderr = run_main(monkeypatch, capsys, "build", "--out", str(tmp_path), "--version", "1.x")
    assert code == 2
    assert stderr.strip().splitlines() == [
        "rig: error: version '1.x': expected MAJOR.MINOR.REVISION[+BUILD], e.g. 1.2.3+4"]
    assert not (tmp_path / "manifest.json").exists()


def test_missing_toolchain_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no arm-none-eabi-gcc here
    code, stderr = run_main(monkeypatch, capsys, "build", "--out", str(tmp_path / "o"), "--variant", "stm32l0")
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "arm-none-eabi-gcc not found" in lines[0] and "apt-get install" in lines[0]
    assert not (tmp_path / "o").exists()


def test_esp32_alone_needs_no_arm_toolchain(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    code, stderr = run_main(monkeypatch, capsys, "build", "--out", str(tmp_path / "o"), "--variant", "esp32",
                            "--fault", "none")
    assert code == 0, stderr
    doc = manifest.load(tmp_path / "o")
    assert manifest.find(doc, "esp32")["file"] == "rig-esp32-none.bin"
    assert manifest.find(doc, "esp32", kind="bootloader")["file"] == "rig-esp32-bootloader.bin"
    with pytest.raises(RigError, match="no app for esp32 with fault hang"):
        manifest.find(doc, "esp32", "hang")


def test_manifest_errors_are_one_line(tmp_path):
    with pytest.raises(RigError, match="no build manifest; run `rig build"):
        manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(RigError, match="unreadable build manifest"):
        manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": 99}')
    with pytest.raises(RigError, match="not a format-1"):
        manifest.load(tmp_path)


def test_key_adds_the_virtual_mcuboot_of_each_stm32_variant(tmp_path, monkeypatch, capsys, key_pem):
    code, stderr = run_main(monkeypatch, capsys, "build", "--out", str(tmp_path), "--variant", "stm32l0",
                            "--variant", "stm32h7", "--fault", "none", "--key", str(key_pem))
    assert code == 0, stderr
    doc = manifest.load(tmp_path)
    public = load_public_key(key_pem)
    for variant in ("stm32h7", "stm32l0"):
        entry = manifest.find(doc, variant, kind="bootloader")
        assert entry["file"] == f"rig-{variant}-mcuboot-virtual.bin" and entry["virtual"] is True
        blob = (tmp_path / entry["file"]).read_bytes()
        assert blob == vmcuboot.build(facts(variant).layout, [public])
        # what the virtual board's MCUboot finds in its mcuboot partition: the key it trusts
        layout = facts(variant).layout
        flash = Flash(tmp_path / f"{variant}-flash.bin", layout.geometry)
        offset = layout.part("mcuboot").offset
        flash.write(offset, blob + bytes([layout.geometry.erased]) * (-len(blob) % layout.geometry.write_size))
        assert [k.key.public_numbers() for k in vmcuboot.read(flash, layout).keys] == [public.key.public_numbers()]
        flash.close()


def test_bad_key_is_one_line(tmp_path, monkeypatch, capsys):
    code, stderr = run_main(monkeypatch, capsys, "build", "--out", str(tmp_path), "--variant", "stm32l0",
                            "--key", str(tmp_path / "missing.pem"))
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "manifest.json").exists()
