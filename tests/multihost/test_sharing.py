"""Several sessions sharing one coordinator's boards; a killed session; an exporter that stops.

These start whole pytest sessions one after another or side by side (about a minute each), so
they run nightly (`tox -e nightly`).
"""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.multihost.conftest import PLACES, REPO, running
from tests.multihost.test_remote_sessions import properties

pytestmark = pytest.mark.nightly
EXPIRY_S = 8.0


def acquisitions(mh) -> dict[str, list[tuple[str, str]]]:
    """The coordinator's own records, per place: [("acquired", by) | ("released", "")] in order."""
    text = (mh.root / "coordinator.log").read_text()
    records: dict[str, list[tuple[str, str]]] = {}
    for place, what, by in re.findall(r"^(\S+): place (acquired|released)(?: by (\S+))?$", text, re.M):
        records.setdefault(place, []).append((what, by))
    return records


def start_hil(mh, junit, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", str(REPO / "tests" / "hil" / "test_flash.py"), "--rig-coordinator",
         mh.address, "-p", "no:cacheprovider", f"--junitxml={junit}", "--rootdir", str(REPO), "-q", *args],
        cwd=mh.root, env=mh.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)


def test_two_sessions_at_once_share_the_boards_and_never_hold_one_together(multihost, tmp_path):
    before = {place: len(r) for place, r in acquisitions(multihost).items()}
    sessions = [start_hil(multihost, tmp_path / f"s{i}.xml", "-n", "2") for i in range(2)]
    outputs = [s.communicate(timeout=900)[0] for s in sessions]
    for session, output in zip(sessions, outputs, strict=True):
        assert session.returncode == 0, output[-3000:]
    for i in range(2):
        assert sorted({p["board"] for p in properties(tmp_path / f"s{i}.xml") if "board" in p}) == PLACES
    # Per place, the coordinator saw acquire, release, acquire, release...: never two holders at once.
    holders = set()
    for place, records in acquisitions(multihost).items():
        new = records[before.get(place, 0):]
        assert [what for what, _ in new] == ["acquired", "released"] * (len(new) // 2), (place, new)
        holders |= {by for what, by in new if what == "acquired"}
    assert len(holders) >= 2  # both sessions' workers held boards


def test_a_killed_session_frees_its_place_within_the_expiry(multihost, tmp_path):
    select = ("--rig-select", "rack=rack-a,variant=stm32h7", "--rig-reservation-expiry", str(EXPIRY_S))
    victim = start_hil(multihost, tmp_path / "victim.xml", *select)
    deadline = time.monotonic() + 120
    while not (held := re.search(r"acquired: (\S+/\S+-pytest\S*)", show(multihost, "rack-a-stm32h7-1"))):
        assert victim.poll() is None and time.monotonic() < deadline, victim.communicate()[0][-2000:]
        time.sleep(0.2)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    killed = time.monotonic()
    # labgrid keeps the place acquired by the dead session; the next session frees it once the
    # dead holder's rig lease ran out, and gets the board.
    assert held.group(1) in show(multihost, "rack-a-stm32h7-1")
    following = start_hil(multihost, tmp_path / "next.xml", *select)
    while held.group(1) in show(multihost, "rack-a-stm32h7-1"):
        assert following.poll() is None, following.communicate()[0][-3000:]
        time.sleep(0.2)
    freed = time.monotonic() - killed
    output = following.communicate(timeout=600)[0]
    assert following.returncode == 0, output[-3000:]
    ran_on = [p["board"] for p in properties(tmp_path / "next.xml") if "board" in p]
    assert ran_on and set(ran_on) == {"rack-a-stm32h7-1"}
    print(f"the killed session's place was free {freed:.1f} s after SIGKILL (expiry {EXPIRY_S} s)")


def show(mh, place: str) -> str:
    return mh.client("-p", place, "show").stdout


def test_an_exporter_that_stops_fails_its_boards_tests_in_one_line(multihost, tmp_path):
    # One worker: the tests alternate between rack-a's and rack-b's STM32L0 (parametrize order).
    session = start_hil(multihost, tmp_path / "run.xml", "--rig-select", "variant=stm32l0")
    try:
        deadline = time.monotonic() + 120
        while "rack-a-stm32l0-1" not in acquisitions(multihost):
            assert session.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        # rack-b's host goes away: its exporter (and ser2net) and the boards behind it.
        multihost.stop("rack-b")
        multihost.rig("lab", "down", "--rack", multihost.racks["rack-b"])
        output = session.communicate(timeout=600)[0]
    finally:
        multihost.rig("lab", "up", "--rack", multihost.racks["rack-b"], "--state", multihost.root / "state" / "rack-b")
        multihost.start_exporter("rack-b")
    cases = properties(tmp_path / "run.xml")
    # The other exporter's board carried on: every one of its tests passed.
    carried_on = [p.get("board") for p in cases].count("rack-a-stm32l0-1")
    failures = re.findall(r"^(place rack-b-stm32l0-1: exporter rack-b left .*)$", output, re.M)
    assert carried_on and failures, output[-3000:]
    assert "Traceback" not in output and f"{carried_on} passed" in output, output[-3000:]


def test_rig_provision_runs_its_fixtures_on_remote_places(tmp_path):
    # Provisioning locks a board for good (readout protection): a coordinator and rack of its own.
    with running(tmp_path, {"rack-p": ("stm32l0",)}) as mh:
        result = mh.rig("provision", "run", "--rig-coordinator", mh.address, "--workdir", tmp_path / "station",
                        timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        assert "1 provisioned, 0 refused, 0 failed" in result.stdout
        assert "acquired: None" in mh.client("-p", "rack-p-stm32l0-1", "show").stdout
