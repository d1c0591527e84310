"""`rig ota` runs the boards of a rack at once, a thread per board, each board's output its own.

Observed from what the run leaves: every board's verdict line, and in the results store each
board's result with its duration and end - the three boards' campaigns overlap in time, which a
run one board after the other never does. (No wall time is asserted; bench/ and the report say
what the demo gains.)
"""

import datetime
import sqlite3

from tests.drivers.conftest import Lab


def test_rig_ota_updates_the_boards_of_a_rack_at_once(tmp_path):
    lab = Lab(tmp_path)
    db = tmp_path / "results.db"
    with lab.running():
        done = lab.rig("ota", "--rack", lab.rack, "--scenario", "full image", "--work", tmp_path / "ota",
                       "--results", f"sqlite:///{db}", timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    for board in ("esp32-1", "stm32h7-1", "stm32l0-1"):
        assert f"ok {board}: full image -> updated" in done.stdout
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT board, duration, finished_at FROM results").fetchall()
    assert sorted(board for board, _, _ in rows) == ["esp32-1", "stm32h7-1", "stm32l0-1"]
    spans = []
    for _, duration, finished in rows:
        end = datetime.datetime.fromisoformat(finished)
        spans.append((end - datetime.timedelta(seconds=duration), end))
    assert max(start for start, _ in spans) < min(end for _, end in spans), "the campaigns did not overlap"
