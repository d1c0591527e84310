"""Acceptance 1-4 of issue 17: canary halt, the gate's boundaries, success that rolls back, silent
devices. Each on a seeded fleet; verdicts from the broker's log and the fleet's ground truth."""

from rig.cli.fleet import cohort_members
from rig.fleet.control import choose
from tests.rollout.judge import first_offer, takes, updates
from tests.rollout.scenario import pol, policy_file, settle


def test_canary_halt(fleet_lab, tmp_path):
    """Acceptance 1: 30 % boot failures in the canary halt the rollout before wave 2; zero job
    notifications reach a device outside the canary."""
    lab = fleet_lab(100, seed=3)
    policy = pol()
    truth = lab.truth()
    canary = set(cohort_members(truth, "canary", policy_file(tmp_path, policy)))
    failing = [i for v in ("esp32", "stm32h7", "stm32l0")
               for i in choose(sorted(i for i in canary if truth[i]["variant"] == v), 0.3, 1, "boot-fail")]
    lab.fleet.inject("boot-fail", failing)
    rid = lab.start(lab.release("2.0.0"), policy)
    settle(lab, lambda t: all(t[i]["outcomes"].get(f"r{rid}-release-{t[i]['variant']}") for i in canary))
    log = lab.log()
    reached = set(first_offer(log))
    assert reached <= canary, f"jobs offered outside the canary: {sorted(reached - canary)[:5]}"
    assert reached == canary
    truth = lab.truth()
    outside = [t for i, t in truth.items() if i not in canary]
    assert all(t["running"] == "1.0.0" and not t["installs"] for t in outside)
    assert {truth[i]["running"] for i in failing} == {"1.0.0"}  # rolled back, as the bootloader does
    assert all(truth[i]["boot_failures"] == 1 for i in failing)
    assert max(takes(log).values()) == 1


H7 = {"stm32h7": 100}  # one track: the wave sizes are exact


def _boundary_lab(fleet_lab, tmp_path):
    lab = fleet_lab(50, seed=4, mix=H7)
    policy = pol(waves=[40, 100], gates={"min_judged": 15, "error_threshold": 0.1, "success_threshold": 0.9,
                                         "pickup_deadline_s": 30.0})
    canary = sorted(cohort_members(lab.truth(), "canary", policy_file(tmp_path, policy)))
    assert len(canary) == 20
    return lab, policy, canary


def test_two_failures_in_twenty_do_not_halt(fleet_lab, tmp_path):
    """Acceptance 2: threshold 10 %, wave 20, minimum 15: 2/20 = 10 % is not above it."""
    lab, policy, canary = _boundary_lab(fleet_lab, tmp_path)
    lab.fleet.inject("boot-fail", canary[:2])
    lab.start(lab.release("2.0.0"), policy)
    truth = lab.wait(lambda t: sum(x["running"] == "2.0.0" and x["confirmed"] for x in t.values()) == 48, 30,
                     "48 devices updated")
    assert set(first_offer(lab.log())) == set(truth)  # wave 1 went out to everyone
    assert {truth[i]["running"] for i in canary[:2]} == {"1.0.0"}


def test_three_failures_in_twenty_halt(fleet_lab, tmp_path):
    """Acceptance 2: 3/20 = 15 % is above 10 %: the track halts and nothing goes past the canary."""
    lab, policy, canary = _boundary_lab(fleet_lab, tmp_path)
    lab.fleet.inject("boot-fail", canary[:3])
    rid = lab.start(lab.release("2.0.0"), policy)
    settle(lab, lambda t: all(t[i]["outcomes"].get(f"r{rid}-release-stm32h7") for i in canary))
    assert set(first_offer(lab.log())) == set(canary)


def test_no_decision_below_the_minimum(fleet_lab, tmp_path):
    """Acceptance 2: with 14 of 20 judged (6 away, all 14 fine) nothing is decided; once the six
    are back and judged, the wave advances."""
    lab, policy, canary = _boundary_lab(fleet_lab, tmp_path)
    away = canary[:6]
    lab.fleet.inject("offline", away, seconds=4.0)
    rid = lab.start(lab.release("2.0.0"), policy)
    job = f"r{rid}-release-stm32h7"
    settle(lab, lambda t: sum(t[i]["outcomes"].get(job) == "updated" for i in canary) == 14, quiet=1.5)
    assert set(first_offer(lab.log())) == set(canary)  # 14 judged: no wave 1 yet
    truth = lab.wait(lambda t: sum(x["running"] == "2.0.0" for x in t.values()) == 50, 30, "all updated")
    assert all(truth[i]["reconnects"] >= 1 for i in away)


def test_success_then_rollback_is_a_failure(fleet_lab, tmp_path):
    """Acceptance 3: 4 of 20 canary devices report SUCCEEDED but their confirm never reached flash:
    they roll back at the next reset. Counted as successes the wave would pass (16 + 4 of 20); it
    must not advance."""
    lab, policy, canary = _boundary_lab(fleet_lab, tmp_path)
    policy["gates"]["soak_s"] = 0.6
    liars = canary[:4]
    lab.fleet.inject("unconfirmed", liars)
    rid = lab.start(lab.release("2.0.0"), policy)
    job = f"r{rid}-release-stm32h7"
    settle(lab, lambda t: all(t[i]["outcomes"].get(job) for i in canary), quiet=1.5)
    log = lab.log()
    said = {thing for _, thing, j, body in updates(log, job)
            if body["status"] == "SUCCEEDED"}
    assert set(liars) <= said  # they did report success ...
    truth = lab.truth()
    assert {truth[i]["running"] for i in liars} == {"1.0.0"}  # ... and run the old image
    assert set(first_offer(log)) == set(canary)  # the wave did not advance


def test_silent_devices_time_out_and_count(fleet_lab, tmp_path):
    """Acceptance 4: devices silent after IN_PROGRESS time out (the service tells them, on the wire)
    and count as failures: half the stm32l0 canary silent halts that track; one silent device per
    later wave of the others is within the threshold, and every wave is decided by its deadline."""
    lab = fleet_lab(120, seed=9)
    deadline = 7.0
    policy = pol(gates={"min_judged": 3, "error_threshold": 0.2, "progress_timeout_s": 2.5,
                        "wave_deadline_s": deadline, "pickup_deadline_s": 2.0})
    path = policy_file(tmp_path, policy)
    truth = lab.truth()
    l0_canary = sorted(set(cohort_members(truth, "canary", path)) & {i for i, t in truth.items()
                                                                       if t["variant"] == "stm32l0"})
    wave1 = set(cohort_members(truth, "wave-1", path))
    silent = l0_canary[: (len(l0_canary) + 1) // 2] + [
        sorted(i for i in wave1 if truth[i]["variant"] == v)[0] for v in ("esp32", "stm32h7")]
    lab.fleet.inject("silent", silent)
    lab.start(lab.release("2.0.0"), policy)
    others = [i for i, t in truth.items() if t["variant"] != "stm32l0" and i not in silent]
    settle(lab, lambda t: all(t[i]["running"] == "2.0.0" for i in others), timeout=40)
    log = lab.log()
    timed_out = {m.thing for m in log if m.topic.endswith("/jobs/notify") and m.payload.get("timedOut")}
    assert timed_out == set(silent)
    reached = first_offer(log)
    assert not {i for i in reached if truth[i]["variant"] == "stm32l0"} - set(l0_canary)  # l0 halted at the canary
    for variant in ("esp32", "stm32h7"):
        starts = []
        for k in range(3):
            members = set(cohort_members(truth, "canary" if k == 0 else f"wave-{k}", path))
            starts.append(min(reached[i] for i in members if truth[i]["variant"] == variant))
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        assert all(g <= deadline + 1.0 for g in gaps), f"{variant}: waves took {gaps} s, deadline {deadline} s"
