"""`rig results import JUNIT.xml`: a JUnit file from elsewhere (another host's run, a CI artefact)
as a run of the store, with what rig's plugin wrote into it (board and OTA properties, console
slices in system-out) read back into the same columns a live session fills."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from rig.errors import RigError
from rig.results.pytest_hooks import NO_VERSION, SECTION_PREFIX, key_of
from rig.results.store import Store


def read_cases(path: Path) -> tuple[dict, list[dict]]:
    """The first testsuite's attributes and one row per testcase; RigError on a file that is not JUnit."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise RigError(f"{path}: not a readable JUnit XML file ({exc})") from None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    if root.tag not in ("testsuite", "testsuites") or not suites:
        raise RigError(f"{path}: no <testsuite> in it; is this a JUnit XML file?")
    rows = []
    for suite in suites:
        for case in suite.iter("testcase"):
            rows.append(_row(case))
    return dict(suites[0].attrib), rows


def _row(case) -> dict:
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    board = props.get("board") or props.get("board_id")
    classname, name = case.get("classname", ""), case.get("name", "")
    path = classname.replace(".", "/") + ".py" if classname else ""
    test_id = f"{path}::{name}" if path else name
    outcome, message = "passed", None
    for tag, kind in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        node = case.find(tag)
        if node is not None:
            outcome = kind
            message = (node.get("message") or "") + ("\n" + node.text if node.text and node.text.strip() else "")
            break
    out = "".join(n.text or "" for n in case.iter("system-out"))
    console, output = _split_console(out)
    firmware = props.get("board_firmware_version")
    return {
        "test_id": test_id, "test_key": key_of(test_id, board), "board": board,
        "variant": props.get("board_variant"), "scenario": props.get("ota_scenario"), "outcome": outcome,
        "duration": float(case.get("time") or 0.0), "retries": int(props.get("board_retries") or 0),
        "expected": props.get("ota_expected"), "observed": props.get("ota_observed"),
        "wire_bytes": int(props["ota_wire_bytes"]) if props.get("ota_wire_bytes") else None,
        "rollbacks": None if props.get("ota_rollbacks") in (None, "none") else props["ota_rollbacks"],
        "read_back": props.get("ota_read_back"),
        "firmware": None if not firmware or firmware.startswith(NO_VERSION) else firmware,
        "message": message.strip() if message else None, "console": console or None, "output": output or None,
        "facts": props,
    }


# The rules pytest's junitxml writes between the kinds of captured text in system-out.
RULES = tuple("{:-^80}".format(f" Captured {kind} ") for kind in ("Out", "Err", "Log"))


def _split_console(out: str) -> tuple[str, str]:
    """(console slice, the rest) of a testcase's system-out: the plugin's slice is the teardown's
    stdout, the last stdout section, starting 'console of'; a rule or the end closes it."""
    start = out.find(SECTION_PREFIX)
    if start < 0:
        return "", _unruled(out)
    ends = [i for i in (out.find("\n" + rule, start) for rule in RULES) if i >= 0]
    end = min(ends) if ends else len(out)
    return out[start:end].rstrip(), _unruled(out[:start] + out[end:])


def _unruled(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line not in RULES).strip()


def import_file(store: Store, path: Path, rack: str | None = None, revision: str | None = None) -> tuple[int, int]:
    """Store the file as one run (kind junit); (run id, number of results). The results are checked
    before anything is written; each is one transaction, the run is closed at the end."""
    suite, rows = read_cases(path)
    started = suite.get("timestamp")
    try:
        start = datetime.fromisoformat(started).astimezone(UTC) if started else None
    except ValueError:
        start = None
    started_at = start.isoformat(timespec="milliseconds") if start else None
    where = f" (run on {suite['hostname']})" if suite.get("hostname") else ""
    run_id = store.start_run("junit", rack=rack, command=f"rig results import {path}{where}", revision=revision,
                             started_at=started_at)
    for row in rows:
        store.add_result(run_id, **row)
    finished = None
    if start is not None and suite.get("time"):
        finished = datetime.fromtimestamp(start.timestamp() + float(suite["time"]), UTC).isoformat(
            timespec="milliseconds")
    store.finish_run(run_id, finished_at=finished)
    return run_id, len(rows)
