"""Fleet rollout figures: a whole fleet updated through one mosquitto on this machine, at 1,000 and
10,000 simulated devices, no rate limit.

Per fleet size: the wall time from `start` to the last device running the release confirmed (ground
truth), deliveries per second, the most downloads the OTA server held at once and the transfers
that had to be retried or failed, messages through the broker, and the memory (RSS, sampled every
second) of the broker, the engine and the device processes.

Goal (issue 17): 10,000 devices updated in under 5 minutes on 2 cores.

    python -m bench rollout                 RIG_BENCH_ROLLOUT=1000,10000 picks the sizes
"""

import json
import os
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rig.fleet.control import Fleet
from rig.fleet.device import Timing
from rig.rollout.kit import make_release
from rig.rollout.release import load_release, policy_from
from rig.rollout.service import EngineProcess, ask

GOAL_S = 300.0  # 10,000 devices in under 5 minutes
# A realistic shape at compressed times: a 1 % canary, 10 %, then everyone; each device takes
# ~1 s of its own (install, reboot, health check) besides its download.
POLICY = {"seed": 1, "waves": [1, 10, 100], "poll_s": 0.5, "rate": {"per_minute": 0},
          "gates": {"min_judged": 5, "soak_s": 0.5, "progress_timeout_s": 120, "pickup_deadline_s": 60,
                    "wave_deadline_s": 600}}
TIMING = Timing(install_s=0.3, boot_s=0.3, health_s=0.3, retry_s=5.0, progress_s=10.0, twin_poll_s=3600.0)


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return 0.0


def _children(pid: int) -> list[int]:
    """The engine's child processes (its artefact server)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Sampler(threading.Thread):
    """Peak RSS per role, sampled every second."""

    def __init__(self, roles: dict[str, list[int]]):
        super().__init__(daemon=True)
        self.roles = roles
        self.peak = {role: 0 for role in roles}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(1.0):
            for role, pids in self.roles.items():
                self.peak[role] = max(self.peak[role], sum(_rss_kib(p) for p in pids))


def measure(devices: int, work: Path) -> dict:
    key = work / "key.pem"
    release = make_release(work / "2.0.0", "2.0.0", key=key)
    url = f"sqlite:///{work / 'rollouts.db'}"
    started = time.monotonic()
    fleet = Fleet.up(work / "fleet", devices, seed=1, timing=TIMING)
    up_s = time.monotonic() - started
    engine = EngineProcess(work / "engine", url, fleet.broker).start()
    roles = {"broker": [fleet.state["broker_pid"]], "engine": [engine.pid, *_children(engine.pid)],
             "devices": [s["pid"] for s in fleet.state["shards"]]}
    sampler = Sampler(roles)
    sampler.start()
    cpu0 = {role: sum(_cpu_s(p) for p in pids) for role, pids in roles.items()}
    try:
        t0 = time.monotonic()
        ask(url, "start", args={"release": load_release(release).to_dict(), "policy": policy_from(POLICY).to_dict()})
        truth = fleet.wait(lambda t: all(x["running"] == "2.0.0" and x["confirmed"] for x in t.values()),
                           3 * GOAL_S, "fleet updated", every=1.0)
        wall = time.monotonic() - t0
        stats = ask(url, "stats")
    finally:
        sampler.stop.set()
        cpu = {role: sum(_cpu_s(p) for p in pids) - cpu0[role] for role, pids in roles.items()}
        engine.stop()
        fleet.down()
    stats = json.loads(stats)
    messages = sum(1 for _ in open(fleet.log, "rb"))
    retried = sum(t["downloads"] for t in truth.values()) - devices
    return {"devices": devices, "up_s": up_s, "wall_s": wall, "per_s": devices / wall, "peak": stats["peak_downloads"],
            "requests": stats["requests"], "retried": retried, "messages": messages,
            "rss": sampler.peak, "cpu": cpu, "shards": len(roles["devices"])}


def main() -> None:
    out = Console(width=160)
    sizes = [int(x) for x in os.environ.get("RIG_BENCH_ROLLOUT", "1000,10000").split(",")]
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="rig-bench-rollout-") as work:
            rows.append(measure(n, Path(work)))
    table = Table(title="fleet rollout on one mosquitto, no rate limit (waves 1 %, 10 %, 100 %)",
                  title_justify="left")
    for col in ("devices", "up s", "rollout s", "updates/s", "peak dl", "HTTP req", "retried", "MQTT msgs",
                "broker MiB", "engine MiB", "devices MiB (procs)", "CPU s b/e/d", "goal"):
        table.add_column(col, justify="right")
    for r in rows:
        goal = "-" if r["devices"] < 10000 else ("met" if r["wall_s"] < GOAL_S else "MISSED")
        table.add_row(str(r["devices"]), f"{r['up_s']:.1f}", f"{r['wall_s']:.1f}", f"{r['per_s']:.1f}",
                      str(r["peak"]), str(r["requests"]), str(r["retried"]), str(r["messages"]),
                      f"{r['rss']['broker'] / 1024:.0f}", f"{r['rss']['engine'] / 1024:.0f}",
                      f"{r['rss']['devices'] / 1024:.0f} ({r['shards']})",
                      "/".join(f"{r['cpu'][k]:.0f}" for k in ("broker", "engine", "devices")), goal)
    out.print(table)
    out.print(f"goal: 10,000 devices updated in under {GOAL_S:.0f} s on 2 cores; peak dl = downloads the OTA server "
              "held at once; retried = downloads a device had to make beyond its first (0 = no failed transfer); "
              "MiB = peak RSS; CPU s = broker / engine and its artefact server / device processes; "
              f"load average during the run: {os.getloadavg()[0]:.1f} (the cores are shared)")


if __name__ == "__main__":
    main()
