"""Provisioning station throughput on the virtual lab: units per hour with 1 and 3 fixtures, and the
station's own overhead beside the time spent flashing.

Goals (issue 8): the station's own overhead - process start, identification bookkeeping, the
check and identity steps, saving the record - under 10 % of the flashing time (erase, write,
read-back, as rig.provision.meter times them); 3 fixtures at least 2.5x the units per hour of one.

Each run starts from blank boards (a fresh lab state: first-time units, as on a production line)
on a private copy of the rack, never the shared lab (provisioning burns the ESP32's eFuses). Two
racks: the virtual rack (one board of each variant: the parallel speed-up is capped by the slowest
unit, sum/max of the unit times) and three STM32H7 boards (one product on three fixtures), on
which a flash-only recipe measures the most any station can get out of the lab on this machine.

Each case runs twice over: on a lab with the default timing - the virtual boards are CPU-bound, so
the figures describe this machine's cores more than a station - and on a lab started with
`rig lab up --timing datasheet`, where flash erases and programs, console bytes and SWD transfers
take the parts' typical times (rig.sim.timing), waits as on real boards. The flash-only ceiling is
a CPU figure and runs on the first only.

    python -m bench provision           (RIG_BENCH_ROUNDS=N runs of each case, default 1)
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.racks import private_rack, virtual_specs
from rig.image.keys import make_pem
from rig.lab import load_rack
from rig.provision import setup
from rig.provision.recipe import Recipe, Step
from rig.provision.station import run_units, warm_up
from rig.variants import VARIANTS

OVERHEAD_GOAL = 0.10
SPEEDUP_GOAL = 2.5
STATION_STEPS = ("check", "identity")  # steps that are the station's own work, not the device's
TIMINGS = {"none": "virtual boards, CPU-bound (this machine)", "datasheet": "datasheet timing"}
FLASH_ONLY = "same-product, flash only"


def _rack(folder: Path, same_product: bool) -> Path:
    specs = virtual_specs()
    if same_product:
        specs = [next(s for s in specs if s["resources"]["RigBoard"]["variant"] == "stm32h7")] * 3
    return private_rack(folder / ("same-product.yaml" if same_product else "virtual-rack.yaml"), "bench", specs)


def _rig(*args) -> None:
    subprocess.run([sys.executable, "-m", "rig", *map(str, args)], check=True, capture_output=True)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of every core since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)  # idle and iowait are not busy


def _lab_pid(rack: Path) -> int:
    from rig.sim import registry

    return registry.read(registry.lab_name(rack))["pid"]


def flash_only(unit) -> dict:
    """A recipe step that only writes the factory image: the most any station can get out of this lab."""
    from rig.image import factory
    from rig.provision.steps import serial_of

    firmware = unit.station.firmware[unit.board.variant]
    unit.record.chip_id = unit.record.serial = serial_of(unit.board.variant, unit.board.id)
    regions = factory.stm32_regions(unit.board.variant, firmware.image, firmware.bootloader)
    unit.drivers.write_regions([(r.offset, r.data) for r in regions], verify=True)
    return {}


def run_once(rack: Path, folder: Path, fixtures: int, round_no: int, recipes: dict | None = None,
             timing: str = "none") -> dict:
    """One station run from blank boards: wall seconds, the units' results, the lab daemon's CPU seconds."""
    state = folder / f"state-{rack.stem}-{fixtures}-{round_no}-{bool(recipes)}-{timing}"
    _rig("lab", "up", "--rack", rack, "--state", state, "--timing", timing)
    try:
        boards = list(load_rack(rack).boards)
        work = folder / f"station-{rack.stem}-{fixtures}-{round_no}-{bool(recipes)}-{timing}"
        spec, records = setup.prepare(work, None, boards, name="bench", operator="bench",
                                      firmware_keys=tuple(map(str, sorted(folder.glob("firmware-key-*.pem")))),
                                      ca_key=str(folder / "ca-key.pem"),
                                      note=lambda line: None)
        lab_cpu, (busy, total) = _cpu_seconds(_lab_pid(rack)), _machine_busy()
        started = time.monotonic()
        results = run_units(spec, records, boards, fixtures, recipes=recipes)
        wall = time.monotonic() - started
        lab_cpu = _cpu_seconds(_lab_pid(rack)) - lab_cpu
        busy, total = (now - before for now, before in zip(_machine_busy(), (busy, total), strict=True))
    finally:
        _rig("lab", "down", "--rack", rack)
    failed = [f"{r.board}: {r.outcome} {r.reason}" for r in results if r.outcome != "provisioned"]
    if failed:
        raise SystemExit("bench provision: units not provisioned: " + "; ".join(failed))
    return {"wall": wall, "results": results, "lab_cpu": lab_cpu, "machine": busy / total}


def split(result) -> dict:
    """One unit's seconds: flashing, the station's own work, and the device's other work (ROM-loader
    connects, eFuse burning, RDP programming, boots)."""
    steps = result.record.steps
    flash = sum(s["flash_seconds"] for s in steps)
    in_steps = sum(s["seconds"] for s in steps)
    station_steps = sum(s["seconds"] - s["flash_seconds"] for s in steps if s["name"] in STATION_STEPS)
    around = result.seconds - in_steps  # process start, lease, probe/port set-up, record save, hand-over
    return {"flash": flash, "station": station_steps + around, "start": result.start_seconds,
            "save": result.save_seconds, "device": in_steps - flash - station_steps, "wall": result.seconds}


def main() -> None:
    out = Console(width=160)  # piped into a log, not squeezed to 80 columns
    rounds = int(os.environ.get("RIG_BENCH_ROUNDS", "1"))
    os.environ.setdefault("RIG_RUNTIME_DIR", tempfile.mkdtemp(prefix="rig-bench-provision-"))
    with tempfile.TemporaryDirectory(prefix="rig-bench-provision-") as tmp:
        folder = Path(tmp)
        # The station's keys, made once for every run (a station with no boards makes only its CA key),
        # a firmware key of each kind the variants' boot chains verify.
        setup.prepare(folder, None, [], name="bench", operator="bench", note=lambda line: None)
        for kind in {v.signing_keys[0] for v in VARIANTS.values()}:
            make_pem(folder / f"firmware-key-{kind}.pem", kind)
        started = time.monotonic()  # the fork server: once per station run, not per unit
        first = warm_up().Process(target=os.getpid)
        first.start()
        first.join()
        forkserver = time.monotonic() - started
        by_timing = {timing: {} for timing in TIMINGS}
        for timing, runs in by_timing.items():
            for same_product in (False, True):
                rack = _rack(folder, same_product)
                for fixtures in (1, 3):
                    runs[rack.stem, fixtures] = [run_once(rack, folder, fixtures, i, timing=timing)
                                                 for i in range(rounds)]
        flashing = {"stm32h7": Recipe("stm32h7", (Step("flash", flash_only),))}
        for fixtures in (1, 3):
            by_timing["none"][FLASH_ONLY, fixtures] = [run_once(rack, folder, fixtures, i, flashing)
                                                       for i in range(rounds)]
    for timing, runs in by_timing.items():
        out.rule(TIMINGS[timing])
        out.print(throughput_table(runs, TIMINGS[timing]))
        out.print(overhead_table(runs, TIMINGS[timing]))
        out.print(verdict(runs, timing))
    out.print(f"fork server start: {forkserver:.2f} s once per station run (it imports esptool, pyocd and the "
              "recipes for every fixture process to come; `rig provision run` starts it while it sets up)")


def _units_per_hour(run: dict) -> float:
    return len(run["results"]) / run["wall"] * 3600


def throughput_table(runs: dict, label: str) -> Table:
    table = Table(title=f"{label}: units per hour, from blank boards (median of the rounds)", title_justify="left")
    for column in ("rack", "fixtures", "wall s", "units/hour", "speed-up", "cap sum/max", "lab daemon CPU",
                   "machine CPU busy"):
        table.add_column(column, justify="left" if column == "rack" else "right")
    for (rack, fixtures), rs in runs.items():
        uph = statistics.median(_units_per_hour(r) for r in rs)
        one = statistics.median(_units_per_hour(r) for r in runs[rack, 1])
        times = [statistics.median(u.seconds for r in rs for u in r["results"] if u.board == b)
                 for b in sorted({u.board for u in rs[0]["results"]})]
        cpu = statistics.median(r["lab_cpu"] / r["wall"] for r in rs)
        machine = statistics.median(r["machine"] for r in rs)
        table.add_row(rack, str(fixtures), f"{statistics.median(r['wall'] for r in rs):.1f}", f"{uph:.0f}",
                      f"{uph / one:.2f}x", f"{sum(times) / max(times):.2f}x" if fixtures > 1 else "-",
                      f"{cpu:.0%} of a core", f"{machine:.0%} of {os.cpu_count()} cores")
    return table


def overhead_table(runs: dict, label: str) -> Table:
    table = Table(title=f"{label}: seconds per unit with 1 fixture (median): flashing, the station's own work, "
                        "the device's other work", title_justify="left")
    for column in ("rack", "variant", "unit", "flashing", "station", "of it: process start", "record save",
                   "device other", "station / flashing"):
        table.add_column(column, justify="left" if column in ("rack", "variant") else "right")
    for (rack, fixtures), rs in runs.items():
        if fixtures != 1 or rack == FLASH_ONLY:
            continue
        for variant in sorted({u.record.variant for u in rs[0]["results"]}):
            parts = [split(u) for r in rs for u in r["results"] if u.record.variant == variant]
            m = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
            table.add_row(rack, variant, f"{m['wall']:.2f}", f"{m['flash']:.2f}", f"{m['station']:.2f}",
                          f"{m['start']:.3f}", f"{m['save']:.3f}", f"{m['device']:.2f}",
                          f"{m['station'] / m['flash']:.1%}")
    return table


def verdict(runs: dict, timing: str) -> str:
    parts = [split(u) for (rack, f), rs in runs.items() if f == 1 and rack != FLASH_ONLY
             for r in rs for u in r["results"]]
    ratio = sum(p["station"] for p in parts) / sum(p["flash"] for p in parts)
    lines = [f"{TIMINGS[timing]}: station overhead {ratio:.1%} of the flashing time over every unit "
             f"(goal < {OVERHEAD_GOAL:.0%}: {'met' if ratio < OVERHEAD_GOAL else 'NOT met'})"]
    for rack in sorted({r for r, _ in runs}):
        speedup = (statistics.median(_units_per_hour(r) for r in runs[rack, 3])
                   / statistics.median(_units_per_hour(r) for r in runs[rack, 1]))
        if rack == FLASH_ONLY:
            lines.append(f"{rack}: 3 boards flashed at once give {speedup:.2f}x the throughput of one: the most "
                         "any station gets out of this lab on this machine")
        else:
            lines.append(f"{rack}: 3 fixtures give {speedup:.2f}x the units per hour of one "
                         f"(goal >= {SPEEDUP_GOAL}x: {'met' if speedup >= SPEEDUP_GOAL else 'NOT met'})")
    if timing == "none":
        lines.append(f"what limits the speed-up here: {os.cpu_count()} cores for the lab and every fixture. With "
                     "no timing model a board's flash work is CPU work - the fixture's own esptool/pyocd protocol "
                     "work and the lab daemon's (one Python interpreter for every board) - and three fixtures keep "
                     "the cores busy ('machine CPU busy', other processes of the machine included). On real boards "
                     "the flash and the boot are waits, not CPU work.")
    else:
        lines.append("with datasheet timing the boards' flash erases and programs, console bytes and SWD transfers "
                     "take the parts' typical times: waits, which fixtures overlap as on real boards. The tools' and "
                     f"the lab's CPU work still shares this machine's {os.cpu_count()} cores on top of them; boot "
                     "times and eFuse burning are not modelled.")
    lines.append("The virtual rack's units differ in length, so 3 fixtures can at best reach its 'cap sum/max'.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
