"""`rig rollout demo`: the rollout story end to end on the embedded defaults.

A private mosquitto, a fleet of N simulated devices on firmware 1.0.0, the virtual rack's three
boards enrolled through rig's agent (canaries of their variants), the engine. Release 2.0.0's
STM32L0 image crashes on boot: the stm32l0 canary fails (the rack's STM32L0 rolls back, read back
through its probe), that track halts, the operator rolls back to 1.0.0. Release 2.1.0 is good and
reaches the whole fleet. Both outcomes are checked against the fleet's ground truth and the rack
boards' read-back verdicts on the wire (never the engine's report); exit 0 only when both hold.
"""

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.table import Table

from rig.cli.console import out
from rig.fleet import protocol as p
from rig.fleet.broker import read_log
from rig.fleet.control import Fleet
from rig.fleet.device import Timing
from rig.ota.kit import make_keys
from rig.rollout import cohorts
from rig.rollout.kit import make_release
from rig.rollout.release import load_release, policy_from
from rig.rollout.service import EngineProcess, ask
from rig.rollout.store import open_db, summary

BAD = "stm32l0"  # the variant whose 2.0.0 image crashes on boot (the demo's story)

# Minutes of a real rollout told in seconds: soak, deadlines and polls compressed.
POLICY: dict[str, Any] = {"waves": [5, 25, 100], "poll_s": 0.2, "rate": {"per_minute": 0},
          "gates": {"min_judged": 5, "soak_s": 1.0, "progress_timeout_s": 120.0, "pickup_deadline_s": 10.0,
                    "wave_deadline_s": 120.0}}
TIMING = Timing(install_s=0.1, boot_s=0.1, health_s=0.2, retry_s=2.0, progress_s=2.0)


def _wait(what: str, condition, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.5)


def _state(db, rid) -> str:
    return summary(db, rid)[0]["state"]


def _rack_verdicts(fleet: Fleet, job_prefix: str) -> dict[str, str]:
    """Each rack board's last word on a job, from the broker's log: the agent's read-back verdict."""
    out = {}
    for m in read_log(fleet.log):
        parts = p.split(m.topic)
        if (parts and parts[0] in fleet.rack_things and parts[1].startswith(f"jobs/{job_prefix}")
                and parts[1].endswith("/update") and m.payload and m.payload["status"] in ("SUCCEEDED", "FAILED")):
            out[parts[0]] = m.payload["statusDetails"].get("verdict", m.payload["status"])
    return out


def _ensure_lab(rack: str) -> None:
    subprocess.run([sys.executable, "-m", "rig", "lab", "up", "--rack", rack], check=True, capture_output=True)


def run(workdir: Path, devices: int, seed: int, rack: str | None) -> bool:
    workdir = Path(workdir).resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    if rack:
        out.print(f"[bold]rack[/]: {rack} (rig lab up), enrolling its boards on 1.0.0")
        _ensure_lab(rack)
        key = workdir / "fleet" / "rack" / "keys" / "campaign-p256.pem"  # the key their MCUboot trusts
        make_keys(workdir / "fleet" / "rack")
    else:
        key = workdir / "release-key.pem"
    old = make_release(workdir / "1.0.0", "1.0.0", key=key)
    bad = make_release(workdir / "2.0.0", "2.0.0", key=key, faults={BAD: "crash-on-boot"}, rollback=str(old))
    good = make_release(workdir / "2.1.0", "2.1.0", key=key)
    policy = policy_from(POLICY | {"seed": seed}).to_dict()
    url = f"sqlite:///{workdir / 'rollouts.db'}"
    out.print(f"[bold]fleet[/]: {devices} devices on a private mosquitto (seed {seed})")
    fleet = Fleet.up(workdir / "fleet", devices, seed, timing=TIMING, rack=rack)
    engine = EngineProcess(workdir / "engine", url, fleet.broker)
    ok = True
    try:
        engine.start()
        db = open_db(url)
        out.print("[bold]rollout 2.0.0[/]: its STM32L0 image crashes on boot")
        r1 = int(ask(url, "start", args={"release": load_release(bad).to_dict(), "policy": policy}))
        _wait(f"the {BAD} track to halt", lambda: any(
            t["variant"] == BAD and t["state"] == "halted" for t in summary(db, r1)[0]["tracks"]))
        _wait("the other tracks to finish", lambda: _state(db, r1) != "running")
        for e in summary(db, r1)[0]["events"]:
            if e["kind"] in ("halt", "track-done"):
                out.print(f"  {e['message']}")
        r2 = int(ask(url, "rollback", r1))
        out.print(f"[bold]rollback {r2}[/] to 1.0.0 for every device that installed 2.0.0")
        _wait("the rollback to finish", lambda: _state(db, r2) != "running")
        truth = fleet.truth()
        l0_installed = {i for i, t in truth.items() if t["variant"] == BAD and any(
            k.startswith(f"r{r1}-") for k in t["installs"])}
        plan, _ = cohorts.plan([(i, False) for i, t in truth.items() if t["variant"] == BAD], seed,
                               POLICY["waves"])
        canary_l0 = {i for i, k in plan.items() if k == cohorts.CANARY}
        first = all(t["running"] == "1.0.0" and t["confirmed"] for t in truth.values()) and l0_installed <= canary_l0
        _verdict(f"bad release halted at the {BAD} canary and rolled back: every device on 1.0.0, "
                 f"{len(l0_installed)} {BAD} devices ever installed it", first)
        if rack:
            bad_verdicts, back_verdicts = _rack_verdicts(fleet, f"r{r1}-"), _rack_verdicts(fleet, f"r{r2}-")
            for thing in fleet.rack_things:
                out.print(f"  {thing}: 2.0.0 -> {bad_verdicts.get(thing, 'no verdict')}"
                          + (f", rollback -> {back_verdicts[thing]}" if thing in back_verdicts else ""))
            l0 = next(t for t in fleet.rack_things if BAD in t)
            first = first and bad_verdicts.get(l0) == "rolled back" and all(
                back_verdicts.get(t, bad_verdicts.get(t)) in ("updated", "rolled back") for t in fleet.rack_things)
        out.print("[bold]rollout 2.1.0[/]: a good release")
        r3 = int(ask(url, "start", args={"release": load_release(good).to_dict(), "policy": policy}))
        _wait("2.1.0 to finish", lambda: _state(db, r3) != "running")
        truth = fleet.truth()
        second = all(t["running"] == "2.1.0" and t["confirmed"] for t in truth.values())
        if rack:
            good_verdicts = _rack_verdicts(fleet, f"r{r3}-")
            out.print("  rack: " + ", ".join(f"{t} {good_verdicts.get(t, 'no verdict')}" for t in fleet.rack_things))
            second = second and all(good_verdicts.get(t) == "updated" for t in fleet.rack_things)
        _verdict(f"good release on {sum(t['running'] == '2.1.0' for t in truth.values())}/{devices} devices, "
                 "confirmed", second)
        ok = first and second
        out.print(_table(db, (r1, r2, r3)))
        out.print(_truth_table(truth))
    except TimeoutError as exc:
        out.print(f"[red]FAILED[/]: no {exc} in time")
        ok = False
    finally:
        engine.stop()
        fleet.down()
    out.print(f"message log: {fleet.log}; database: {url}")
    return ok


def _verdict(text: str, ok: bool) -> None:
    out.print(f"{'[green]ok[/]' if ok else '[red]FAILED[/]'} {text}")


def _table(db, rids) -> Table:
    table = Table(title="per rollout, variant and wave (the engine's view)", title_justify="left")
    for col in ("rollout", "variant", "wave", "succeeded", "failed", "rolled back", "canceled", "other"):
        table.add_column(col)
    for rid in rids:
        r = summary(db, rid)[0]
        for key in sorted(r["counts"], key=lambda k: (k.split("/")[0], int(k.split("/")[1]))):
            c = Counter(r["counts"][key])
            variant, wave = key.split("/")
            failed = c["FAILED"] + c["TIMED_OUT"] + c["REJECTED"]
            other = sum(c.values()) - c["SUCCEEDED"] - failed - c["ROLLED_BACK"] - c["CANCELED"]
            table.add_row(f"{rid} {r['kind']} {r['version']}", variant, "canary" if wave == "0" else wave,
                          str(c["SUCCEEDED"]), str(failed), str(c["ROLLED_BACK"]), str(c["CANCELED"]), str(other))
    return table


def _truth_table(truth: dict) -> Table:
    table = Table(title="the fleet at the end (ground truth)", title_justify="left")
    for col in ("variant", "running", "confirmed", "devices"):
        table.add_column(col)
    for (v, running, confirmed), n in sorted(Counter((t["variant"], t["running"], t["confirmed"])
                                                     for t in truth.values()).items()):
        table.add_row(v, running, "yes" if confirmed else "no", str(n))
    return table
