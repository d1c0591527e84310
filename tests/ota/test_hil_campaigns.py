"""The OTA campaigns of the HIL suite in the default run: the default sample of tests/hil/test_ota.py
and test_broken_models.py, as CI would run them (`pytest tests/hil/... --rig-rack FILE -n 3`), on a
private copy of the virtual rack that rig's pytest plugin starts and stops - never the shared one."""

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.labs import lab_rack

REPO = Path(__file__).resolve().parents[2]


# Nightly: tox's second command runs this very sample on the virtual rack; this run adds the
# plugin-started private rack and the JUnit board check at four minutes of the default budget.
@pytest.mark.nightly
def test_ota_sample_passes_on_a_private_rack(tmp_path):
    rack = str(lab_rack(tmp_path, name="ota-ci"))
    junit = tmp_path / "ota.xml"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(REPO / "tests" / "hil" / "test_ota.py"),
           str(REPO / "tests" / "hil" / "test_broken_models.py"), "--rig-rack", rack, "-n", "3", "-q",
           f"--junitxml={junit}"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " failed" not in done.stdout and " passed" in done.stdout
    report = junit.read_text()
    for scenario in ("crash on boot", "power cut at 50% of the download", "wrongly signed image", "delta patch"):
        assert f'name="ota_scenario" value="{scenario}"' in report
    assert "rolled back to" in report  # the rollbacks are named in the JUnit properties
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    unnamed = [c.get("name") for c in cases if not any(p.get("name") == "board" for p in c.iter("property"))]
    assert cases and not unnamed, f"JUnit records without the board they ran on: {unnamed}"
