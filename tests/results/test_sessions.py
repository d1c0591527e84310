"""pytest sessions recorded in the results store, as a user runs them: whole results or none."""

import os
import signal
import subprocess
import time

import pytest

from rig.results.pytest_hooks import key_of

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


@pytest.mark.parametrize("how", ["kill -9", pytest.param("ctrl-c", marks=pytest.mark.nightly)])
def test_a_killed_session_leaves_its_run_interrupted_and_no_partial_result(sessions, how):
    sessions.module(MODULE)
    flag = sessions.root / "hanging"
    proc = subprocess.Popen(sessions.pytest_cmd("test_inner.py", "-p", "no:randomly"), cwd=sessions.root,
                            env={**sessions.env, "HANG_FLAG": str(flag)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not flag.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else "timeout"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL if how == "kill -9" else signal.SIGINT)
    proc.communicate(timeout=60)
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
