"""pytest sessions recorded in the results store, as a user runs them: whole results or none."""

import os
import signal
import subprocess

import pytest

from rig.results.pytest_hooks import key_of
from tests import hangs

MODULE = """
    import os, time
    import pytest

    def test_passes():
        pass

    def test_fails():
        print("what the test printed")
        assert 1 == 2, "one is not two"

    @pytest.mark.skip(reason="not on this rack")
    def test_skipped():
        pass

    def test_hangs():
        open(os.environ["HANG_FLAG"], "w").close()  # the parent kills the session now
        time.sleep(600)
"""


def test_a_session_records_its_run_and_every_result(sessions):
    """With pytest-xdist workers: only the controller writes, from the reports they send it."""
    sessions.module(MODULE)
    done = sessions.pytest("test_inner.py", "-k", "not hangs", "-n", "2")
    assert done.returncode == 1, done.stdout
    store = sessions.store()
    (run,) = store.runs()
    assert run["kind"] == "pytest" and run["status"] == "failed"
    assert run["counts"] == {"passed": 1, "failed": 1, "error": 0, "skipped": 1}
    assert run["revision"] is None  # the folder is no git checkout
    assert "test_inner.py" in run["command"] and run["finished_at"] >= run["started_at"]
    by_name = {r["test_id"].split("::")[1]: r for r in store.results(run["id"])}
    assert by_name["test_fails"]["outcome"] == "failed"
    assert "one is not two" in by_name["test_fails"]["message"]
    assert "what the test printed" in by_name["test_fails"]["output"]
    assert by_name["test_skipped"]["message"] == "not on this rack"


def test_a_junit_file_from_elsewhere_is_imported_as_a_run(sessions, tmp_path):
    sessions.module(MODULE)
    done = sessions.pytest("test_inner.py", "-k", "not hangs", "--rig-results", "off", "--junitxml", "j.xml")
    assert done.returncode == 1 and not (tmp_path / "runtime" / "results.db").exists()
    imported = sessions.rig("results", "import", tmp_path / "j.xml", "--results", sessions.url, "--revision", "abc")
    assert imported.returncode == 0, imported.stderr
    assert "as run 1: 3 results (failed)" in imported.stdout
    (run,) = sessions.store().runs()
    assert (run["kind"], run["revision"]) == ("junit", "abc")
    assert run["counts"] == {"passed": 1, "failed": 1, "error": 0, "skipped": 1}
    (tmp_path / "bad.xml").write_text("<html>no</html>")
    bad = sessions.rig("results", "import", tmp_path / "bad.xml", "--results", sessions.url)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no <testsuite>" in bad.stderr
    assert len(sessions.store().runs()) == 1


# A terminal starts a job with SIGINT at its default action. A run started in the background (`nohup tox
# -e nightly &`: its pytest, xdist workers and their children all ignore SIGINT, inherited through fork
# and exec) would start the session with SIGINT ignored, and Python then installs no KeyboardInterrupt
# handler: the session slept through Ctrl-C (the nightly run's 60 s timeouts; in the foreground it passed).
FROM_A_TERMINAL = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                   "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


@pytest.mark.parametrize("how", ["kill -9", pytest.param("ctrl-c", marks=pytest.mark.nightly)])
def test_a_killed_session_leaves_its_run_interrupted_and_no_partial_result(sessions, how):
    sessions.module(MODULE)
    flag = sessions.root / "hanging"
    # Started as from a terminal: a session of its own, SIGINT at its default action (FROM_A_TERMINAL);
    # Ctrl-C signals its process group, as a terminal does.
    cmd = sessions.pytest_cmd("test_inner.py", "-p", "no:randomly")
    proc = subprocess.Popen([cmd[0], "-c", FROM_A_TERMINAL, *cmd[1:]], cwd=sessions.root,
                            env={**sessions.env, "HANG_FLAG": str(flag)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        # Slow is not hung (tests/hangs.py): at idle the session needs ~1.2 s of CPU to reach test_hangs
        # and ~1.5 s after Ctrl-C to finish (of which ~70 % hypothesis's plugin importing hypothesis for
        # its terminal summary, ~25 % pytest rendering the KeyboardInterrupt) - in the nightly run at
        # load 15 that took over 60 s of wall.
        hangs.wait_until(proc, flag.exists, "the session before test_hangs")
        if how == "kill -9":
            os.kill(proc.pid, signal.SIGKILL)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        hangs.finish(proc, f"the session after {how}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    store = sessions.store()  # opening the store finds the run's process gone
    (run,) = store.runs()
    assert run["status"] == "interrupted", run
    assert run["counts"] == {"passed": 1, "failed": 1, "error": 0, "skipped": 1}  # test_hangs: no row at all
    assert "test_inner.py::test_hangs" not in {r["test_id"] for r in store.results(run["id"])}


def test_a_live_run_is_not_reaped(sessions):
    store = sessions.store()
    run_id = store.start_run("ota")
    assert store.reap() == []  # this process lives
    assert store.run(run_id)["status"] == "running"


def test_sessions_without_rack_or_store_record_nothing(sessions):
    sessions.module(MODULE)
    cmd = [a for a in sessions.pytest_cmd("test_inner.py", "-k", "passes") if a not in ("--rig-results", sessions.url)]
    done = subprocess.run(cmd, cwd=sessions.root, env=sessions.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout
    assert not (sessions.root / "runtime" / "results.db").exists()


def test_a_bad_store_url_is_one_usage_line(sessions):
    sessions.module(MODULE)
    done = sessions.pytest("test_inner.py", "--rig-results", "nosuch://db")
    assert done.returncode == 4
    assert "results store URL 'nosuch://db' is not usable" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_postgresql_is_a_store(postgres_url, tmp_path):
    from tests.results.conftest import Session

    sessions = Session(tmp_path, postgres_url)
    sessions.module(MODULE)
    before = {r["id"] for r in sessions.store().runs()}
    done = sessions.pytest("test_inner.py", "-k", "not hangs")
    assert done.returncode == 1, done.stdout
    store = sessions.store()
    (run,) = [r for r in store.runs() if r["id"] not in before]
    assert run["status"] == "failed"
    assert run["counts"] == {"passed": 1, "failed": 1, "error": 0, "skipped": 1}


@pytest.mark.parametrize("nodeid,board_id,key", [
    ("t.py::test_x[esp32-1]", "esp32-1", "t.py::test_x"),
    ("t.py::test_x[esp32-1-crash on boot]", "esp32-1", "t.py::test_x[crash on boot]"),
    ("t.py::test_x[full image-esp32-1]", "esp32-1", "t.py::test_x[full image]"),
    ("t.py::test_x[a-esp32-1-b]", "esp32-1", "t.py::test_x[a-b]"),
    ("t.py::test_x[a]", None, "t.py::test_x[a]"),
])
def test_the_test_key_leaves_the_board_out(nodeid, board_id, key):
    assert key_of(nodeid, board_id) == key
