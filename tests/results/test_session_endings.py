"""A pytest session that ended otherwise than by running its tests is recorded as what ended it,
not judged by the results it has (none failed: it would read `passed`)."""

import pytest

ENDINGS = {
    # pytest's own crash: INTERNALERROR, exit 3 (as xdist's reply to a bad -k was)
    "internal error": ("conftest.py", "def pytest_runtestloop(session):\n    raise RuntimeError('boom')\n", 3,
                       "failed", "pytest stopped with an INTERNALERROR"),
    "collection error": ("test_broken.py", "def test_x(:\n", 2, "failed",
                         "pytest stopped: 1 error during collection; no test ran"),
    "pytest.exit": ("test_exits.py", "import pytest\n\ndef test_x():\n    pytest.exit('enough for today')\n", 2,
                    "interrupted", "pytest.exit: enough for today; tests not finished have no result"),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_session_pytest_ended_early_is_recorded_as_what_ended_it(sessions, ending):
    name, source, code, status, note = ENDINGS[ending]
    sessions.module("def test_passes():\n    pass\n", name="test_fine.py")
    sessions.module(source, name=name)
    done = sessions.pytest()
    assert done.returncode == code, done.stdout + done.stderr
    (run,) = sessions.store().runs()
    assert run["status"] == status, run
    assert run["note"].startswith(note), run
    assert any(line.startswith("rig: run 1 ") and line.endswith(f": {status}") for line in done.stdout.splitlines())
