"""The results store in pytest sessions: runs and results, health checks, quarantined boards skipped.

Registered by rig.pytest_plugin. Options:

    --rig-results URL        record into this store (default $RIG_RESULTS, else <runtime dir>/results.db);
                             `off` records nothing
    --rig-health-check       health-check the rack's boards before the first test (rig.results.health);
                             a board that fails is quarantined
    --rig-quarantine-after N quarantine a board after N different tests failed on it in a row while
                             they passed on other boards (default 3; 0: never)

A session is recorded when it names a store or a rack (--rig-results, $RIG_RESULTS, --rig-rack,
--lg-env, $RIG_RACK), or once a test ran on a board: rig's own unit tests leave no run behind.
Only the controlling process writes (pytest-xdist workers send it their reports), one result per
test in one transaction once the test's teardown has reported, so a test cut short has no row and
a killed session's run is found `interrupted` (rig.results.store). A test on a quarantined board is
skipped, and the session's header says so in one line per board.
"""

import os
import sys
import time

import pytest

from rig.errors import RigError

STATE: "pytest.StashKey[_Session]" = pytest.StashKey()
QUARANTINED: "pytest.StashKey[dict]" = pytest.StashKey()
SECTION_PREFIX = "console of "
NO_VERSION = "no boot line"


def pytest_addoption(parser):
    group = parser.getgroup("rig")
    group.addoption("--rig-results", metavar="URL", default=None,
                    help="results store to record this session in (SQLAlchemy URL; default $RIG_RESULTS or "
                         "<runtime dir>/results.db; 'off' records nothing)")
    group.addoption("--rig-health-check", action="store_true", default=False,
                    help="health-check every board of the rack before the tests; failing boards are quarantined")
    group.addoption("--rig-quarantine-after", type=int, default=None, metavar="N",
                    help="quarantine a board that failed N different tests in a row which passed on other "
                         "boards (default 3, 0: never)")


class _Session:
    """The controller's recording state."""

    def __init__(self, config):
        self.config = config
        self.url = store_url(config)
        self.recorder = None
        self.started_at = None
        self.pending: dict[str, list] = {}
        self.header: list[str] = []
        self.boards_seen: set[str] = set()
        self.stopped_by: BaseException | None = None  # what ended the session early (pytest_keyboard_interrupt)


def store_url(config) -> str | None:
    """The store this session uses, or None with --rig-results off."""
    from rig.results.store import default_url

    url = config.getoption("--rig-results")
    if url == "off":
        return None
    return url or default_url()


def _explicit(config) -> bool:
    return bool(config.getoption("--rig-results") or os.environ.get("RIG_RESULTS") or config.getoption("--rig-rack")
                or getattr(config.option, "lg_env", None) or os.environ.get("RIG_RACK"))


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    config = session.config
    if _is_worker(config):
        return
    state = config.stash[STATE] = _Session(config)
    from rig.results.store import now

    state.started_at = now()
    if state.url is None:
        return
    if config.getoption("--rig-health-check"):
        _health_check(state)
    if _explicit(config):
        _start_recording(state)
        _quarantine_header(state)


def _start_recording(state: _Session) -> None:
    from rig.pytest_plugin import rack_path
    from rig.results.record import Recorder, git_revision

    config = state.config
    command = " ".join(["pytest", *config.invocation_params.args])
    try:
        state.recorder = Recorder("pytest", state.url, rack=str(rack_path(config)), command=command,
                                  revision=git_revision(config.invocation_params.dir), warn=_warn)
    except RigError as exc:
        raise pytest.UsageError(f"--rig-results: {exc}") from None
    state.recorder.store.engine.dispose()
    state.header.append(f"rig: recording {state.recorder.describe()}")


def _warn(line: str) -> None:
    print(f"\nrig: warning: {line}", file=sys.stderr)


def _health_check(state: _Session) -> None:
    from rig.pytest_plugin import COORDINATOR_KEY, _ensure_lab, _load_rack, rack_path
    from rig.results.health import check_boards
    from rig.results.store import Store

    config = state.config
    rack = _load_rack(config)
    if any(b.virtual and b.host is None for b in rack.boards):  # remote boards are served on their hosts
        _ensure_lab(rack_path(config))
    wanted = config.getoption("--rig-board")
    boards = [b for b in rack.boards if not wanted or b.id in wanted]
    try:
        store = Store(state.url)
    except RigError as exc:
        raise pytest.UsageError(f"--rig-results: {exc}") from None
    try:
        started = time.monotonic()
        checked = check_boards(boards, store, holder="pytest health check",
                               lease_timeout=config.getoption("--rig-lease-timeout"),
                               coordinator=config.stash.get(COORDINATOR_KEY, None))
    finally:
        store.close()
    state.header.append(f"rig: health check of {len(checked)} boards in {time.monotonic() - started:.1f} s: "
                        + ", ".join(f"{h.board} {'ok' if h.ok else 'FAILED'}" for h in checked))
    state.header.extend(f"rig: health {h.line()}" for h in checked if not h.ok)


def _quarantine_header(state: _Session) -> None:
    from rig.pytest_plugin import _load_rack

    quarantined = _quarantined(state.config)
    if not quarantined:
        return
    try:
        ids = {b.id for b in _load_rack(state.config).boards}
    except pytest.UsageError:
        ids = set(quarantined)
    for board, q in sorted(quarantined.items()):
        if board in ids:
            state.header.append(f"rig: board {board} is quarantined ({q['reason']}); its tests are skipped - "
                                f"`rig health --release {board}` returns it")


def _quarantined(config) -> dict:
    """Boards in quarantine, read once per process (controller and each worker alike)."""
    if QUARANTINED not in config.stash:
        from rig.results.store import Store

        url = store_url(config)
        found = {}
        if url is not None:
            try:
                store = Store(url)
                found = store.quarantined()
                store.close()
            except RigError as exc:
                raise pytest.UsageError(f"--rig-results: {exc}") from None
        config.stash[QUARANTINED] = found
    return config.stash[QUARANTINED]


def pytest_report_header(config):
    state = config.stash.get(STATE, None)
    return state.header if state else None


def pytest_collection_modifyitems(config, items):
    if not any("board" in getattr(item, "fixturenames", ()) for item in items):
        return
    quarantined = _quarantined(config)
    if not quarantined:
        return
    for item in items:
        spec = getattr(getattr(item, "callspec", None), "params", {}).get("board")
        q = quarantined.get(getattr(spec, "id", None))
        if q is not None and spec is not None:
            item.user_properties.append(("board", spec.id))
            item.user_properties.append(("board_variant", spec.variant))
            item.add_marker(pytest.mark.skip(reason=f"board {spec.id} is quarantined: {q['reason']}"))


def pytest_runtest_logreport(report):
    state = _state_of(report)
    if state is None:
        return
    state.pending.setdefault(report.nodeid, []).append(report)
    if report.when != "teardown":
        return
    reports = state.pending.pop(report.nodeid)
    row = result_row(reports)
    if state.recorder is None and row.get("board"):
        _start_recording(state)  # the first test on a board makes this a HIL session worth keeping
    if state.recorder is not None:
        if row.get("board"):
            state.boards_seen.add(row["board"])
        state.recorder.add(**row)


_CONFIG: list = []  # the controller's config, for logreport (which gets no config argument)


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    if not _is_worker(config):
        _CONFIG[:] = [config]


def _state_of(report):
    if not _CONFIG:
        return None
    state = _CONFIG[0].stash.get(STATE, None)
    return state if state is not None and state.url is not None else None


def pytest_keyboard_interrupt(excinfo):
    # pytest calls it for ctrl-c, for pytest.exit() and for its own stop after collection errors alike
    state = _CONFIG[0].stash.get(STATE, None) if _CONFIG else None
    if state is not None:
        state.stopped_by = excinfo.value


def _ending(state: _Session, exitstatus) -> tuple[str | None, str | None]:
    """(status, note) of a run that pytest ended otherwise than by running its tests: the results
    alone would say `passed` (no failed result); (None, None) lets the store judge by the results."""
    if exitstatus == pytest.ExitCode.INTERNAL_ERROR:
        return "failed", "pytest stopped with an INTERNALERROR (its output says where); tests not run have no result"
    if exitstatus != pytest.ExitCode.INTERRUPTED:
        return None, None
    why = state.stopped_by
    if isinstance(why, pytest.Session.Interrupted):  # pytest's own stop: errors during collection
        return "failed", f"pytest stopped: {why}; no test ran"
    if isinstance(why, pytest.exit.Exception):
        return "interrupted", f"pytest.exit: {why.msg}; tests not finished have no result"
    return "interrupted", "interrupted from the keyboard; tests not finished have no result"


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    config = session.config
    state = config.stash.get(STATE, None)
    if state is None or state.recorder is None:
        return
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    status = state.recorder.finish(*_ending(state, exitstatus))
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"rig: {state.recorder.describe()}: {status}"]
    after = config.getoption("--rig-quarantine-after")
    if not interrupted and state.boards_seen:
        from rig.results.health import QUARANTINE_AFTER, quarantine_by_failures
        from rig.results.store import Store

        try:
            store = Store(state.url)
            for board, reason in quarantine_by_failures(
                    store, sorted(state.boards_seen), QUARANTINE_AFTER if after is None else after).items():
                lines.append(f"rig: board {board} quarantined: {reason}")
            store.close()
        except RigError as exc:
            lines.append(f"rig: warning: quarantine not evaluated: {exc}")
    if reporter is not None:
        reporter.line("")  # the progress line ("[100%]") has no newline of its own yet
        for line in lines:
            reporter.write_line(line)


def pytest_unconfigure(config):
    if _CONFIG and _CONFIG[0] is config:
        _CONFIG.clear()


# -- one test's reports -> one result row
def result_row(reports) -> dict:
    """The store's row for one test from its setup/call/teardown reports."""
    last = reports[-1]
    props = {}
    for r in reports:
        props.update({str(k): v for k, v in r.user_properties})
    board = props.get("board") or props.get("board_id")
    outcome, message = _outcome(reports)
    sections = [(title, text) for r in reports for title, text in r.sections]
    console = "\n".join(text for title, text in sections if "stdout" in title and text.startswith(SECTION_PREFIX))
    output = "\n".join(f"--- {title}\n{text}" for title, text in sections
                       if not text.startswith(SECTION_PREFIX) and ("stdout" in title or "stderr" in title))
    firmware = str(props.get("board_firmware_version", "")) or None
    return {
        "test_id": last.nodeid,
        "test_key": key_of(last.nodeid, board),
        "board": board,
        "variant": props.get("board_variant"),
        "scenario": props.get("ota_scenario"),
        "outcome": outcome,
        "duration": round(sum(r.duration for r in reports), 3),
        "retries": int(props.get("board_retries", 0) or 0),
        "expected": props.get("ota_expected"),
        "observed": props.get("ota_observed"),
        "wire_bytes": int(props["ota_wire_bytes"]) if "ota_wire_bytes" in props else None,
        "rollbacks": _none_if(props.get("ota_rollbacks"), "none"),
        "read_back": props.get("ota_read_back"),
        "firmware": None if firmware and firmware.startswith(NO_VERSION) else firmware,
        "message": message,
        "console": console or None,
        "output": output or None,
        "facts": {k: str(v) for k, v in props.items()},
    }


def _none_if(value, nothing):
    return None if value in (None, nothing) else value


def _outcome(reports) -> tuple[str, str | None]:
    for r in reports:
        if r.failed:
            return ("failed" if r.when == "call" else "error"), r.longreprtext
    for r in reports:
        if r.skipped:
            if hasattr(r, "wasxfail"):
                return "skipped", f"xfail: {r.wasxfail}"
            reason = r.longrepr[2] if isinstance(r.longrepr, tuple) else r.longreprtext
            return "skipped", str(reason).removeprefix("Skipped: ")
    return "passed", None


def key_of(nodeid: str, board: str | None) -> str:
    """The test without its board: `t.py::test_x[esp32-1-crash on boot]` -> `t.py::test_x[crash on boot]`."""
    if not board or not nodeid.endswith("]") or "[" not in nodeid:
        return nodeid
    head, params = nodeid[:-1].split("[", 1)
    if params == board:
        return head
    if params.startswith(f"{board}-"):
        return f"{head}[{params[len(board) + 1:]}]"
    if params.endswith(f"-{board}"):
        return f"{head}[{params[:-len(board) - 1]}]"
    return f"{head}[{params.replace(f'-{board}-', '-')}]"
