"""The HIL suite as CI runs it: `pytest tests/hil --rig-rack FILE`, the plugin starting the virtual
rack itself, sequentially and with three xdist workers, judged from the JUnit file it writes."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_suite(lab, tests: str, workers: str, junit) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(REPO / "tests" / "hil" / tests),
           "--rig-rack", str(lab.rack), "-n", workers, f"--junitxml={junit}", "-q"]
    return subprocess.run(cmd, cwd=lab.root, env=lab.env, capture_output=True, text=True, timeout=600)


def check_report(junit, expected_cases: int) -> None:
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == expected_cases
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        board_id = case.get("name").split("[")[1].rstrip("]")
        assert props["board"] == board_id
        assert props["board_variant"] in ("esp32", "stm32h7", "stm32l0")
        assert len(props["board_firmware_sha256"]) == 64  # every test here flashes
        out = "".join(node.text or "" for node in case.iter("system-out"))
        assert f"console of {board_id} during this test" in out


@pytest.mark.parametrize("workers", ["3", pytest.param("0", marks=pytest.mark.nightly)])
def test_hil_flash_module_on_a_rack_the_plugin_starts(idle_lab, tmp_path, workers):
    # One test per board: the rest of test_flash.py adds nothing to what this proves of the plugin,
    # and the default `tox` runs all of tests/hil on the virtual rack anyway.
    junit = tmp_path / "report.xml"
    result = run_suite(idle_lab, "test_flash.py::test_flash_read_back", workers, junit)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout  # one per board
    check_report(junit, 3)
    # The plugin stopped the lab it started.
    status = json.loads(idle_lab.rig("lab", "status", "--json", "--rack", idle_lab.rack).stdout)
    assert status["running"] is False


@pytest.mark.nightly  # tests/plugin/test_junit.py checks the slices in the default run, without a lab
def test_console_slice_of_a_booting_board_reaches_junit(idle_lab, tmp_path):
    junit = tmp_path / "report.xml"
    result = run_suite(idle_lab, "test_boot.py", "0", junit)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    case = cases["test_cold_boot_shows_rom_banner_and_app_boot_line[esp32-1]"]
    out = "".join(node.text or "" for node in case.iter("system-out"))
    assert "rst:0x1 (POWERON_RESET)" in out and "rig: boot variant=esp32 version=1.2.0+0" in out
    retried = cases["test_a_failing_step_is_retried_after_a_power_cycle[esp32-1]"]
    props = {p.get("name"): p.get("value") for p in retried.iter("property")}
    assert props["board_retries"] == "1"
    assert props["board_firmware_version"] == "1.2.0+0"
