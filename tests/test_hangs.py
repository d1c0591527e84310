"""tests/hangs.py: a starved process is slow, not hung; a blocked or spinning one is hung."""

import signal
import subprocess
import sys
import threading
import time

import pytest

from tests import hangs

NEEDS_CPU = "import time\nwhile time.process_time() < {}: pass\n"  # work that takes this much CPU, then exits


def starve(proc: subprocess.Popen, run_s: float, every_s: float) -> threading.Thread:
    """Let `proc` run at most `run_s` in every `every_s` (SIGSTOP/SIGCONT), as a crowded host does."""
    def cycle():
        while proc.poll() is None:
            time.sleep(run_s)
            proc.send_signal(signal.SIGSTOP)
            time.sleep(every_s - run_s)
            proc.send_signal(signal.SIGCONT)
    thread = threading.Thread(target=cycle, daemon=True)
    thread.start()
    return thread


def test_a_starved_process_is_slow_not_hung():
    # 0.2 s of CPU at no more than 5 % of a core: at least 4 s of wall, whatever the load - a wall-clock
    # timeout of 3 s (the stall allowed below) calls it hung.
    proc = subprocess.Popen([sys.executable, "-c", NEEDS_CPU.format(0.2)])
    starve(proc, 0.05, 1.0).join(0)
    hangs.finish(proc, "the starved process", stall_s=3, cpu_s=5)
    assert proc.returncode == 0


def test_a_blocked_process_is_hung_and_says_what_it_waits_in():
    # a session that ignores SIGINT sleeps through Ctrl-C: the line names that (among the signals a
    # background run ignores already: SIGHUP, SIGQUIT, ...)
    proc = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, "
                             "signal.SIG_IGN); time.sleep(600)"])
    try:
        with pytest.raises(pytest.fail.Exception,
                           match=r"the sleeper: hung - blocked \(state S in \w+, ignoring "
                                 r"[^)]*\bSIGINT\b[^)]*\), its CPU time stood at \d\.\d\d s for \d s"):
            hangs.finish(proc, "the sleeper", stall_s=2)
    finally:
        proc.kill()
        proc.wait()


def test_a_spinning_process_is_hung():
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with pytest.raises(pytest.fail.Exception, match=r"the spinner: hung - spinning, \d+\.\d s of CPU"):
            hangs.finish(proc, "the spinner", cpu_s=0.3)
    finally:
        proc.kill()
        proc.wait()


def test_waiting_for_a_sign_fails_when_the_process_exits_first(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "print('bye')"], stdout=subprocess.PIPE, text=True)
    with pytest.raises(pytest.fail.Exception, match=r"the process exited \(0\) first:\nbye"):
        hangs.wait_until(proc, (tmp_path / "never").exists, "the early leaver")


def test_the_cpu_time_counts_the_children_at_work():
    # the parent waits (blocked) while its child works: the session is not hung
    proc = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; subprocess.run([sys.executable, "
                             f"'-c', {NEEDS_CPU.format(1.5)!r}])"])
    start = hangs.cpu_seconds(proc.pid)
    hangs.finish(proc, "the parent", stall_s=0.5)
    assert proc.returncode == 0 and start < 1.5
