"""Catch rate: how many of the defect catalogue's bugs the OTA suite catches, per profile.

For every defect of rig/sim/broken.py's CATALOGUE a private virtual lab is started with that
defect (rig.sim.broken.enable: a switch in the environment of `rig lab up` for the lab's models,
and for a firmware defect of the STM32s every release a defect build of rig's C app), and the scenarios of
rig.ota.scenarios run on its boards through rig.ota.campaign - the same runs as the HIL suite -
until one of them fails (a verdict other than the expected outcome, or a missing proof). The
default profile is what CI runs (the default sample, and the downgrade on boards set aside); the
nightly profile adds the sweeps and everything else. Scenarios that BROKEN_BY names for the defect
run first, so a caught defect usually costs one or two runs; a survivor costs the whole profile.
A firmware defect of the STM32s (a defect build of rig's C app) is hunted on the STM32 boards,
which run that build: the ESP32's model switch of the same bug must not stand in for it. A defect
only a board in another state can show (rig.sim.broken.PROVED_BY_TEST: a flash-encrypted ESP32) is
hunted by the pytest test that catches it, in the profile its markers put it in.

Prints per defect the scenario and board that killed it (or "survived") and what that run observed,
then killed/total and the rate for each profile. Each killing scenario then runs once more on a
faithful lab (the control): a kill whose scenario also fails there proves nothing and is not
counted. Goal (issue 16): nightly 100 %, default >= 90 %. Not part of CI: a full run takes tens
of minutes on two cores. RIG_CATCH_RATE_ONLY=switch,switch limits the run to those
defects (a partial table, for working on one).
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.racks import REPO, private_rack
from rig.drivers.pool import BoardPool
from rig.errors import RigError
from rig.lab import load_rack
from rig.ota import scenarios
from rig.ota.kit import CampaignKit
from rig.sim.broken import CATALOGUE, PROVED_BY_TEST, Defect, enable
from rig.variants import Family, facts

GOALS = {"default": 0.90, "nightly": 1.0}
ONE_WAY_DEFAULT = ("downgraded image",)  # burns a floor: the default run has it on boards set aside
Run = tuple[str, str]  # (scenario, variant), or (test node, PYTEST) for a defect PROVED_BY_TEST
PYTEST = "pytest"
# The tests of each profile, as tox selects them (pyproject's addopts deselect the nightly ones).
MARKERS = {"default": "not nightly", "nightly": "nightly or not nightly"}
NO_TESTS = 5  # pytest's exit code when the selection is empty: the test is not in that profile


def _rack(folder: Path, name: str) -> Path:
    return private_rack(folder / f"{name}.yaml", f"catch-{name}")


def _rig(env: dict[str, str], *args, check: bool = True) -> None:
    subprocess.run([sys.executable, "-m", "rig", *map(str, args)], check=check, capture_output=True,
                   env=dict(os.environ, **env))


def _pytest(node: str, profile: str, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", MARKERS[profile],
                           "--basetemp", folder, node], cwd=REPO, capture_output=True, text=True)


def plan(defect: Defect, variants: list[str], nightly: bool) -> list[tuple[str, str]]:
    """(scenario, variant) in the order they run: those naming the defect first."""
    runs = []
    for variant in variants:
        names = [s.name for s in scenarios.scenarios(variant, sweep=nightly)]
        names += [n for n in scenarios.one_way() if scenarios.fits(n, variant) and (nightly or n in ONE_WAY_DEFAULT)]
        runs += [(n, variant) for n in names]
    # One-way scenarios raise the board's floor for good: after every other scenario on that board.
    return sorted(runs, key=lambda r: (defect.switch not in scenarios.breakers(*r), r[0] in scenarios.one_way()))


def _run(kit: CampaignKit, pool: BoardPool, board, name: str):
    """One scenario on one board, through rig.ota.campaign; the board is powered off afterwards: a
    defect may leave it in a crash or hang loop (an image made permanent that resets and boots
    again), and an emulated core that never waits would starve the lab's other boards of CPU."""
    drivers = pool.take(board)
    try:
        return kit.campaign(drivers, allow_otp_burn=True).run(scenarios.by_name(name))
    finally:
        drivers.power_off()


def control(runs: set[Run], folder: Path) -> dict[Run, str]:
    """Each killing (scenario, variant) once more on a faithful lab: a kill counts only if the
    scenario passes there (else it failed for another reason: the lab, the load, the scenario).
    Returns the runs that did not pass, with what they observed."""
    failed = {}
    controls = {kill: faithful for kill, faithful in PROVED_BY_TEST.values()}
    for name, _ in sorted(r for r in runs if r[1] == PYTEST):
        done = _pytest(controls[name], "nightly", folder / "pytest-control")
        if done.returncode:
            failed[(name, PYTEST)] = _last_line(done.stdout)
    runs = {r for r in runs if r[1] != PYTEST}
    if not runs:
        return failed
    rack = _rack(folder, "control")
    _rig({}, "lab", "up", "--rack", rack, "--state", folder / "state-control")
    try:
        boards = {b.variant: b for b in load_rack(rack).boards}
        pool = BoardPool("catch-rate-control", lease_timeout=60)
        with CampaignKit(rack, folder / "work-control") as kit:
            # One-way runs last: they raise the board's floor for good.
            for name, variant in sorted(runs, key=lambda r: (r[0] in scenarios.one_way(), r)):
                try:
                    verdict = _run(kit, pool, boards[variant], name)
                    if not verdict.ok:
                        failed[(name, variant)] = verdict.summary()
                except RigError as exc:
                    failed[(name, variant)] = f"error: {exc}"
        pool.release()
    finally:
        _rig({}, "lab", "down", "--rack", rack, check=False)
    return failed


def _say(run: Run | None) -> str:
    if run and run[1] == PYTEST:
        return f"{run[0].split('::')[-1]} (pytest)"
    return f"{run[0]} on {run[1]}" if run else "survived"


def _last_line(output: str) -> str:
    return (output.strip().splitlines() or [""])[-1]


def hunt_by_test(defect: Defect, folder: Path, why: dict[str, str]) -> dict[str, Run | None]:
    """hunt() for a defect PROVED_BY_TEST: its test, in the first profile that selects it."""
    node = PROVED_BY_TEST[defect.switch][0]
    found: dict[str, Run | None] = {"default": None, "nightly": None}
    for profile in ("default", "nightly"):
        done = _pytest(node, profile, folder / f"pytest-{defect.switch}")
        if done.returncode == NO_TESTS:
            continue
        why[defect.switch] = _last_line(done.stdout)
        if done.returncode == 0:  # the test passes: it caught the defect
            found[profile] = found["nightly"] = (node, PYTEST)
        break
    return found


def hunt(defect: Defect, folder: Path, why: dict[str, str]) -> dict[str, Run | None]:
    """The killing run per profile (scenario, variant), None when the defect survived it;
    why[defect] is what the killing run observed."""
    if defect.switch in PROVED_BY_TEST:
        return hunt_by_test(defect, folder, why)
    rack = _rack(folder, defect.switch)
    breakage = enable(defect.switch)
    env = breakage.env
    _rig(env, "lab", "up", "--rack", rack, "--state", folder / f"state-{defect.switch}")
    found: dict[str, Run | None] = {"default": None, "nightly": None}
    try:
        boards = {b.variant: b for b in load_rack(rack).boards}
        variants = sorted(v for v in boards if not breakage.build or facts(v).family is Family.STM32)
        pool = BoardPool(f"catch-rate-{defect.switch}", lease_timeout=60)
        with CampaignKit(rack, folder / f"work-{defect.switch}", defect=breakage.build) as kit:
            done: set[tuple[str, str]] = set()
            for profile in ("default", "nightly"):
                for name, variant in plan(defect, variants, nightly=profile == "nightly"):
                    if (name, variant) in done:
                        continue
                    done.add((name, variant))
                    try:
                        verdict = _run(kit, pool, boards[variant], name)
                        killed = not verdict.ok
                        seen = f"observed {verdict.observed}" + "".join(f"; {r}" for r in verdict.reasons)
                    except RigError as exc:  # the run could not finish: the suite reports an error
                        killed, seen = True, f"error: {exc}"
                    if killed:
                        found[profile] = (name, variant)
                        why[defect.switch] = seen
                        break
                if found[profile]:
                    if profile == "default":
                        found["nightly"] = found["default"]
                    break
            pool.release()
    finally:
        _rig(env, "lab", "down", "--rack", rack, check=False)  # a lab that will not stop loses no figure
    return found


def main() -> None:
    only = [s for s in os.environ.get("RIG_CATCH_RATE_ONLY", "").split(",") if s]
    catalogue = [d for d in CATALOGUE if not only or d.switch in only]
    console = Console(width=160)  # the table reads in a log file too
    table = Table(title="defects and the scenario that caught each (default profile, else nightly)")
    for column in ("defect", "kind", "stm32 build", "component", "default", "nightly"):
        table.add_column(column)
    killed = {"default": 0, "nightly": 0}
    start = time.monotonic()
    survivors: dict[str, list[str]] = {"default": [], "nightly": []}
    why: dict[str, str] = {}
    results: dict[str, dict[str, Run | None]] = {}
    with tempfile.TemporaryDirectory(prefix="catch-rate-") as tmp:
        for defect in catalogue:
            found = hunt(defect, Path(tmp), why)
            for profile, run in found.items():
                if run:
                    killed[profile] += 1
                else:
                    survivors[profile].append(defect.switch)
            results[defect.switch] = found
            console.print(f"{defect.switch}: default {_say(found['default'])}; nightly {_say(found['nightly'])}; "
                          f"{why.get(defect.switch, '')}", soft_wrap=True)
        killers = {run for found in results.values() for run in found.values() if run}
        unconfirmed = control(killers, Path(tmp))
    for defect in catalogue:
        found = results[defect.switch]
        for profile, run in found.items():
            if run and run in unconfirmed:
                found[profile] = None  # the scenario fails on a faithful board too: no proof
                killed[profile] -= 1
                survivors[profile].append(f"{defect.switch} (its killer {_say(run)} also failed on a faithful board)")
        table.add_row(defect.switch, defect.kind.value, "yes" if enable(defect.switch).build else "-", defect.component,
                      _say(found["default"]),
                      _say(found["nightly"]) if found["default"] is None else "(default)")
    console.print(table)
    for (name, variant), summary in sorted(unconfirmed.items()):
        console.print(f"control: {name} on {variant} failed on a faithful board: {summary}", soft_wrap=True)
    total = len(catalogue)
    for profile in ("default", "nightly"):
        rate = killed[profile] / total if total else 0.0
        goal = "meets" if rate >= GOALS[profile] else "below"
        console.print(f"{profile}: {killed[profile]}/{total} killed = {rate:.0%} ({goal} the goal of "
                      f"{GOALS[profile]:.0%}); survivors: {', '.join(survivors[profile]) or 'none'}")
    console.print(f"{time.monotonic() - start:.0f} s for {total} defects")


if __name__ == "__main__":
    main()
