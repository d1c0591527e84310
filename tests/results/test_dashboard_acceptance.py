"""Three HIL sessions on the virtual rack, one on deliberately broken board models, then the
dashboard in headless chromium: its run list, per-board table and trend plot show exactly the
counts of the three JUnit files. Then the static report of the last run, opened with no network,
shows the failing test's console slice. Screenshots of every page are kept with the test."""

import xml.etree.ElementTree as ET
from collections import Counter, defaultdict

from tests.results.conftest import private_rack

HIL = "tests/hil"
# A handful of quick tests: a flash read-back on each of two boards, one OTA scenario on the ESP32. Under
# RIG_SIM_BROKEN=no-revert the ESP32 bootloader never rolls the crashing image back: that fails.
FLASH, OTA, QUICK = "test_flash.py::test_flash_read_back", "test_ota.py::test_update_on_every_board", \
    "read_back or (crash and esp32)"
SESSIONS = [
    ("all good", {}, [FLASH, OTA], QUICK),
    ("flash only", {}, [FLASH], None),
    ("broken models", {"RIG_SIM_BROKEN": "no-revert"}, [FLASH, OTA], QUICK),
]


def junit_counts(path) -> tuple[Counter, dict[str, Counter], dict[str, str]]:
    """Counts of outcomes, per board (the board property), and the failing tests' system-out."""
    total, per_board, failing_out = Counter(), defaultdict(Counter), {}
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        outcome = ("failed" if case.find("failure") is not None else "error" if case.find("error") is not None
                   else "skipped" if case.find("skipped") is not None else "passed")
        total[outcome] += 1
        per_board[props.get("board")][outcome] += 1
        if outcome == "failed":
            failing_out[case.get("name")] = (props.get("board"),
                                             "".join(n.text or "" for n in case.iter("system-out")))
    return total, per_board, failing_out


def shown_counts(row) -> dict[str, int]:
    return {o: int(row.locator(f'[data-count="{o}"]').inner_text()) for o in ("passed", "failed", "error", "skipped")}


def test_three_sessions_on_the_dashboard_and_the_report_offline(sessions, dashboard, page, browser, tmp_path):
    import os

    rack = private_rack(tmp_path / "rack.yaml", ("esp32-1", "stm32l0-1"))  # two boards: two rows per run
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    expected = []
    # The sessions on faithful boards share one lab, started here: a session leaves running a lab it
    # did not start. The broken models need a lab of their own, which that session's plugin starts with
    # RIG_SIM_BROKEN in its environment, and stops.
    up = sessions.rig("lab", "up", "--rack", rack)
    assert up.returncode == 0, up.stderr
    try:
        for i, (what, env, tests, selection) in enumerate(SESSIONS, start=1):
            if env:
                sessions.rig("lab", "down", "--rack", rack)
            junit = tmp_path / f"session-{i}.xml"
            args = [f"{repo}/{HIL}/{t}" for t in tests] + (["-k", selection] if selection else [])
            done = sessions.pytest(*args, "--rig-rack", rack, f"--junitxml={junit}", env=env, timeout=900)
            assert done.returncode == (1 if env else 0), f"session {what}:\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
            expected.append(junit_counts(junit))
    except BaseException:
        sessions.rig("lab", "down", "--rack", rack)
        raise
    broken_total, _, failing_out = expected[-1]
    assert broken_total["failed"] >= 1 and broken_total["passed"] >= 1  # the broken models did break something

    shots = tmp_path / "screenshots"
    base = dashboard("--rack", rack, "--results", sessions.url, env=sessions.env)
    page.goto(base + "/runs")
    page.screenshot(path=str(shots / "runs.png"), full_page=True)
    rows = page.locator("#runs tr[data-run]").all()
    assert len(rows) == 3
    run_ids = sorted(int(r.get_attribute("data-run")) for r in rows)
    for run_id, (total, _, _) in zip(run_ids, expected, strict=True):
        row = page.locator(f'#runs tr[data-run="{run_id}"]')
        assert shown_counts(row) == {o: total[o] for o in ("passed", "failed", "error", "skipped")}, run_id

    for run_id, (_, per_board, _) in zip(run_ids, expected, strict=True):
        page.goto(f"{base}/runs/{run_id}")
        page.screenshot(path=str(shots / f"run-{run_id}.png"), full_page=True)
        rows = page.locator("#per-board tr[data-board]").all()
        boards = {r.get_attribute("data-board"): shown_counts(r) for r in rows}
        assert boards == {b: {o: c[o] for o in ("passed", "failed", "error", "skipped")} for b, c in per_board.items()}

    page.goto(base + "/trends")
    page.screenshot(path=str(shots / "trends.png"), full_page=True)
    for run_id, (total, _, _) in zip(run_ids, expected, strict=True):
        bars = page.locator(f'#results-chart rect[data-column="#{run_id}"]').all()
        drawn = {b.get_attribute("data-key"): int(b.get_attribute("data-value")) for b in bars}
        assert drawn == {o: total[o] for o in ("passed", "failed", "error", "skipped")}, run_id
    assert page.locator("#duration-chart circle.point").count() == 3

    # The static report of the last run, opened from disk with every network request refused.
    report = tmp_path / "r.html"
    done = sessions.rig("report", "--last", "-o", report, "--results", sessions.url)
    assert done.returncode == 0, done.stderr
    offline = browser.new_context(offline=True)
    requests = []
    offline.on("request", lambda r: requests.append(r.url))
    try:
        tab = offline.new_page()
        tab.goto(report.as_uri())
        tab.screenshot(path=str(shots / "report.png"), full_page=True)
        assert {r for r in requests if not r.startswith("file:")} == set()
        assert tab.locator("#failures details.result.failed").count() == broken_total["failed"]
        (name, (board, out)), *_ = failing_out.items()
        slice_lines = [line for line in out.splitlines() if line.startswith("rig: boot")]
        assert slice_lines, out
        shown = tab.locator(f'#failures details.result[data-test$="{name}"] pre.slice').inner_text()
        assert f"console of {board} during this test" in shown
        assert slice_lines[-1].strip() in shown
        assert tab.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor") == "rgb(29, 39, 51)"
    finally:
        offline.close()
