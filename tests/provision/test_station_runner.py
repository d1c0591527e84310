"""The station's runner with recipes of the test's own, on the private rack: what a step did not
expect ends its unit as a failed record with a one-line reason (the traceback goes to the station
log), a fixture process that dies without a word is recorded too, and units run on N fixtures."""

import os

import pytest

from rig.lab import load_rack
from rig.provision import setup, stm32
from rig.provision.recipe import Recipe, Step
from rig.provision.station import run_units
from rig.provision.steps import CHECK
from tests.provision.station_lab import SUFFIX, check_consistent

IDENTIFY = stm32.STEPS[0]  # the real identification, through the probe


def surprise(unit):
    return {}["no such measurement"]  # a bug in a step: not a RigError


def vanish(unit):
    os._exit(9)  # the process ends below Python's exception handling (as on a segfault)


@pytest.fixture
def station(station_lab, tmp_path, monkeypatch):
    monkeypatch.setenv("RIG_RUNTIME_DIR", station_lab.env["RIG_RUNTIME_DIR"])  # the fixtures reach this lab
    # the boards rig.provision.stm32 provisions: the recipes below identify them with its IDENTIFY
    boards = [b for b in load_rack(station_lab.rack).boards if b.facts.recipe == stm32.__name__]
    spec, records = setup.prepare(tmp_path / "station", f"sqlite:///{tmp_path / 'records.db'}", boards,
                                  name="station-test", operator="tester",
                                  firmware_keys=(str(station_lab.firmware_key),), note=lambda line: None)
    return spec, records, boards


def test_unexpected_failures_become_failed_records(station, tmp_path):
    spec, records, boards = station
    events = []
    recipes = {"stm32h7": Recipe("stm32h7", (IDENTIFY, Step("surprise", surprise))),
               "stm32l0": Recipe("stm32l0", (IDENTIFY, Step("vanish", vanish)))}
    results = {r.board: r for r in run_units(spec, records, boards, 1, lambda *e: events.append(e), recipes)}

    h7, l0 = results[f"stm32h7-1{SUFFIX}"], results[f"stm32l0-1{SUFFIX}"]
    assert (h7.outcome, h7.reason) == ("failed", "surprise: unexpected KeyError: 'no such measurement' "
                                                 "(traceback in the station log)")
    assert (l0.outcome, l0.reason) == ("failed", "vanish: the fixture process died (exit status 9)")
    rows = check_consistent(tmp_path / "records.db")
    assert sorted((a["outcome"], a["reason"]) for a in rows["attempts"]) == sorted(
        [("failed", h7.reason), ("failed", l0.reason)])
    assert rows["units"] == []
    log = (tmp_path / "station" / "station.log").read_text()
    assert "Traceback" in log and "KeyError: 'no such measurement'" in log
    # One fixture: the second unit starts after the first has ended.
    kinds = [(board, kind) for board, kind, *_ in events if kind in ("start", "done")]
    assert [k for _, k in kinds] == ["start", "done", "start", "done"]
    assert (f"stm32h7-1{SUFFIX}", "step", "identify", "done") in events


def test_units_on_several_fixtures_each_in_its_own_process(station, tmp_path):
    spec, records, boards = station
    events = []
    recipes = {v: Recipe(v, (IDENTIFY, CHECK, Step("pid", pid))) for v in ("stm32h7", "stm32l0")}
    results = run_units(spec, records, boards, 2, lambda *e: events.append(e), recipes)
    assert [r.outcome for r in results] == ["provisioned", "provisioned"]  # (this recipe's idea of it)
    kinds = [kind for _, kind, *_ in events if kind in ("start", "done")]
    assert kinds[:2] == ["start", "start"]  # both fixtures busy at once
    pids = {r.record.steps[-1]["measurements"]["pid"] for r in results}
    assert len(pids) == 2 and os.getpid() not in pids


def pid(unit):
    return {"pid": os.getpid()}
