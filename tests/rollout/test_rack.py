"""Acceptance 11 of issue 17: the rack's three virtual boards take part as canaries. A release whose
STM32 images crash on boot halts both STM32 tracks at the canary; the ESP32 board takes the good
ESP32 image and is rolled back with the rest when the operator rolls back. Read back through each
board's own flasher afterwards (the probe, the ROM loader), every board runs its old image."""

import subprocess
import sys

import pytest

from rig.drivers.pool import BoardPool
from rig.lab import load_rack
from rig.ota.kit import CampaignKit
from rig.rollout.kit import make_release
from tests.labs import lab_rack
from tests.rollout.judge import first_offer, updates
from tests.rollout.scenario import pol


@pytest.fixture
def rack(tmp_path):
    path = str(lab_rack(tmp_path, name="fleet"))
    lab = [sys.executable, "-m", "rig", "lab"]
    subprocess.run([*lab, "up", "--rack", path, "--state", str(tmp_path / "lab")], check=True, capture_output=True,
                   cwd=tmp_path)
    try:
        yield path  # a fresh state folder: factory-fresh boards
    finally:
        subprocess.run([*lab, "down", "--rack", path], capture_output=True, cwd=tmp_path)


@pytest.mark.nightly  # half a minute of virtual boards: tox -e nightly
def test_rack_boards_are_canaries_and_end_on_their_old_images(fleet_lab, rack):
    lab = fleet_lab(12, seed=6, rack=rack)
    things = lab.fleet.rack_things
    assert len(things) == 3
    agent = lab.fleet.folder / "rack"
    key = agent / "keys" / "campaign-p256.pem"  # the key the boards' MCUboot trusts
    old = make_release(lab.work / "1.0.0", "1.0.0", key=key)
    bad = make_release(lab.work / "2.0.0", "2.0.0", key=key, rollback=str(old),
                       faults={"stm32h7": "crash-on-boot", "stm32l0": "crash-on-boot"})
    policy = pol(waves=[40, 100], gates={"min_judged": 2, "progress_timeout_s": 120.0, "pickup_deadline_s": 60.0,
                                         "wave_deadline_s": 300.0})
    rid = lab.start(bad, policy)
    job = f"r{rid}-release-"

    def reported(t):  # every rack board has a final word on the job, on the wire
        finals = {thing for _, thing, _, body in updates(lab.log(), job)
                  if body["status"] in ("SUCCEEDED", "FAILED")}
        return set(things) <= finals

    lab.wait(reported, 180, "the rack boards' reports")
    log = lab.log()
    verdicts = {thing: body["statusDetails"] for _, thing, _, body in updates(log, job)
                if body["status"] in ("SUCCEEDED", "FAILED") and thing in things}
    by_variant = {load_variant(thing, rack): v for thing, v in verdicts.items()}
    assert by_variant["stm32h7"]["verdict"] == by_variant["stm32l0"]["verdict"] == "rolled back"
    assert by_variant["esp32"]["verdict"] == "updated"
    truth = lab.truth()
    reached = first_offer(log, job)
    stm32 = {i for i in reached if i in truth and truth[i]["variant"] != "esp32"}
    assert all(truth[i]["outcomes"] for i in stm32)  # only canary sims got it: they all ran it
    assert not any(truth[i]["installs"] for i, t in truth.items() if t["variant"] != "esp32" and i not in reached)
    back = int(lab.ask("rollback", rid))
    lab.wait(lambda t: any(thing in {th for _, th, _, body in updates(lab.log(), f"r{back}-")
                                     if body["status"] == "SUCCEEDED"} for thing in things), 120,
             "the ESP32 board rolled back")
    lab.engine.stop()
    lab.fleet.down()
    for board in load_rack(rack).boards:
        baseline = (agent / f"baseline-{board.id}.bin").read_bytes()
        pool = BoardPool("test read-back", lease_timeout=60)
        try:
            with CampaignKit(rack, agent) as kit:
                rb = kit.campaign(pool.take(board)).target.read_back({"old": baseline})
        finally:
            pool.release()
        assert rb.holds == "old" and rb.stable, f"{board.id}: {rb}"


def load_variant(thing: str, rack: str) -> str:
    return next(b.variant for b in load_rack(rack).boards if thing.endswith(b.id))
