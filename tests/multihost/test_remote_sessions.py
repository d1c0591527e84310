"""pytest sessions and rig verbs on boards of two exporters, through the coordinator only."""

import re
import sys
import xml.etree.ElementTree as ET

import pytest
import yaml

from tests.multihost.conftest import PLACES, REPO


def hil(mh, junit, *args, tests="tests/hil", timeout=600):
    """`pytest tests/hil --rig-coordinator ...` as a CI job runs it."""
    return mh.run(sys.executable, "-m", "pytest", str(REPO / tests), "--rig-coordinator", mh.address,
                  "-p", "no:cacheprovider", f"--junitxml={junit}", "--rootdir", str(REPO), *args,
                  timeout=timeout)


def properties(junit) -> list[dict[str, str]]:
    tree = ET.parse(junit)
    return [{p.get("name"): p.get("value") for p in case.iter("property")} for case in tree.iter("testcase")]


def test_hil_flash_tests_run_on_boards_of_both_exporters(multihost, tmp_path):
    junit = tmp_path / "hil.xml"
    result = hil(multihost, junit, "-n", "2", "-q", "-k", "read_back", tests="tests/hil/test_flash.py")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    props = [p for p in properties(junit) if "board" in p]
    assert sorted({p["board"] for p in props}) == PLACES
    assert {p["board_host"] for p in props} == {"rack-a", "rack-b"}
    # Every place is free again once the session ended.
    assert "acquired: None" in multihost.client("-v", "places").stdout
    assert not re.search(r"acquired: (?!None)", multihost.client("-v", "places").stdout)


def test_rig_flash_and_console_on_a_remote_place(multihost, tmp_path):
    from rig.image import esp_app, factory

    regions = factory.esp32_regions(esp_app.app_image("1.2.0"))
    files = []
    for region in regions:
        path = tmp_path / f"{region.offset:x}.bin"
        path.write_bytes(region.data)
        files.append(f"0x{region.offset:x}={path}")
    flashed = multihost.rig("flash", "--rig-coordinator", multihost.address, "--board", "rack-b-esp32-1", *files)
    assert flashed.returncode == 0, flashed.stderr
    console = multihost.rig("console", "--rig-coordinator", multihost.address, "--board", "rack-b-esp32-1",
                            "--power-cycle", "--until", "rig: alive", "--timeout", "30")
    assert console.returncode == 0, console.stdout + console.stderr
    assert "rig: boot" in console.stdout


def test_a_rack_file_may_name_remote_places(multihost, tmp_path):
    rack = tmp_path / "remote.yaml"
    rack.write_text(yaml.safe_dump({"imports": ["rig.lab.resources"], "targets": {
        "h7-over-there": {"resources": {"RemotePlace": {"name": "rack-a-stm32h7-1"},
                                        "RigBoard": {"variant": "stm32h7", "virtual": True, "tags": ["smp"]}}},
        "esp-over-there": {"resources": {"RemotePlace": {"name": "rack-b-esp32-1"},
                                         "RigBoard": {"variant": "esp32", "virtual": True}}},
    }}))
    junit = tmp_path / "remote.xml"
    result = hil(multihost, junit, "--rig-rack", str(rack), "-q", "-k", "read_back", tests="tests/hil/test_flash.py")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    props = [p for p in properties(junit) if "board" in p]
    assert {(p["board"], p["board_host"]) for p in props} == {("h7-over-there", "rack-a"),
                                                                 ("esp-over-there", "rack-b")}
    power = multihost.rig("power", "cycle", "--rack", rack, "--rig-coordinator", multihost.address,
                          "--board", "h7-over-there")
    assert power.returncode == 0, power.stderr
    refused = multihost.rig("power", "cycle", "--rack", rack, "--board", "h7-over-there")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (f"rig: error: {rack}: board h7-over-there is a RemotePlace; "
                                      "pass --rig-coordinator HOST:PORT")


@pytest.mark.nightly  # a whole campaign (~20 s); by default rig flash and console cover a remote place
def test_rig_ota_on_a_remote_place(multihost, tmp_path):
    result = multihost.rig("ota", "--rig-coordinator", multihost.address, "--board", "rack-a-stm32l0-1",
                           "--scenario", "crash on boot", "--work", tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert re.search(r"ok rack-a-stm32l0-1: crash on boot -> rolled back", result.stdout)


@pytest.mark.nightly  # a power cycle, banner, probe/ROM loader and flash read on each place (~15 s)
def test_rig_health_checks_remote_places(multihost):
    result = multihost.rig("health", "--rig-coordinator", multihost.address, "--rig-select", "rack=rack-b")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok rack-b-esp32-1: power cycle ok" in result.stdout
    assert "2 of 2 boards healthy" in result.stdout
