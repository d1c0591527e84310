"""Telling a hung process from a slow one, for tests that wait on a process they started.

A wall-clock timeout cannot: on a loaded host a process may get well under 1 % of a core (Linux's
autogroup scheduling shares the CPU between sessions first; every lab daemon is a session of its
own, while the pytest run's dozens of processes share one). In the nightly run of 13:34 a pytest
session that needs ~1.5 s of CPU to finish after Ctrl-C was still printing its summary when its
60 s ran out; starved here (nice 19 beside two busy loops) it used 0.3 s of CPU in 60 s, runnable,
not stuck. What tells a hang is the process's own CPU time: a hung process either stands still
(blocked: its CPU time does not move) or spins (its CPU time grows past anything the work needs).
"""

import os
import signal
import subprocess
import time
from collections.abc import Callable

import pytest

TICK = os.sysconf("SC_CLK_TCK")
CHECK_S = 0.5  # how often the CPU time is read (a walk over /proc: ~3.5 ms of CPU)


def cpu_seconds(pid: int) -> float:
    """CPU time of process `pid` and of its live descendants, with that of the children they reaped."""
    parent, used = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # the fields after the command name
        except OSError:  # gone meanwhile
            continue
        parent[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = sum(map(int, fields[11:15])) / TICK  # utime, stime, cutime, cstime
    children: dict[int, list[int]] = {}
    for child, ppid in parent.items():
        children.setdefault(ppid, []).append(child)
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += used.get(p, 0.0)
        todo.extend(children.get(p, ()))
    return total


def _waits(pid: int) -> str:
    """What the process's main thread waits in, and the signals it ignores (a SIGINT ignored since
    its start is a session that sleeps through Ctrl-C)."""
    try:
        status = dict(line.split(":\t", 1) for line in open(f"/proc/{pid}/status").read().splitlines())
        wchan = open(f"/proc/{pid}/wchan").read()
    except OSError:
        return "gone"
    ignored = int(status["SigIgn"], 16)
    names = [signal.Signals(n).name for n in range(1, 32) if ignored >> (n - 1) & 1 and n in signal.valid_signals()]
    return f"state {status['State'].split()[0]} in {wchan or '-'}, ignoring {' '.join(names) or 'no signal'}"


class _Watch:
    """Fails the test when `proc` hangs: its CPU time stood still for `stall_s` of wall, or grew by
    more than `cpu_s` since the watch began."""

    def __init__(self, proc: subprocess.Popen, what: str, stall_s: float, cpu_s: float):
        self.proc, self.what, self.stall_s, self.cpu_s = proc, what, stall_s, cpu_s
        self.first = self.last = cpu_seconds(proc.pid)
        self.moved = self.checked = time.monotonic()

    def check(self) -> None:
        now = time.monotonic()
        if now - self.checked < CHECK_S:
            return
        self.checked = now
        used = cpu_seconds(self.proc.pid)
        if used > self.last:
            self.last, self.moved = used, now
        elif now - self.moved > self.stall_s:
            pytest.fail(f"{self.what}: hung - blocked ({_waits(self.proc.pid)}), its CPU time stood at "
                        f"{used:.2f} s for {now - self.moved:.0f} s")
        if used - self.first > self.cpu_s:
            pytest.fail(f"{self.what}: hung - spinning, {used - self.first:.1f} s of CPU and still going")


def wait_until(proc: subprocess.Popen, done: Callable[[], bool], what: str, stall_s: float = 60.0,
               cpu_s: float = 30.0) -> None:
    """Return once done() holds; fail if `proc` hangs first (_Watch) or exits first."""
    watch = _Watch(proc, what, stall_s, cpu_s)
    while not done():
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"{what}: the process exited ({proc.returncode}) first:\n{output}")
        watch.check()
        time.sleep(0.05)


def finish(proc: subprocess.Popen, what: str, stall_s: float = 60.0, cpu_s: float = 30.0) -> str | None:
    """`proc`'s output once it exited, however long a loaded host makes that; fail if it hangs (_Watch)."""
    watch = _Watch(proc, what, stall_s, cpu_s)
    while True:
        try:
            return proc.communicate(timeout=CHECK_S)[0]  # reads on, so a full pipe never blocks it
        except subprocess.TimeoutExpired:
            watch.check()
