"""What the dashboard's pages and the static report show, computed from the store in one place."""

from collections import Counter, defaultdict

from rig.results.store import OUTCOMES, Store

FAILED = ("failed", "error")
TREND_RUNS = 30
FLAKY_RUNS = 10


def counts_of(rows: list[dict]) -> dict:
    found = Counter(r["outcome"] for r in rows)
    return {o: found.get(o, 0) for o in OUTCOMES}


def run_view(store: Store, run_id: int) -> dict | None:
    """One run: summary, failures first, per-board table, OTA verdicts, tests by board and scenario."""
    run = store.run(run_id)
    if run is None:
        return None
    rows = store.results(run_id)
    boards = defaultdict(list)
    for r in rows:
        boards[r["board"] or "(no board)"].append(r)
    per_board = [{"board": b, "variant": next((r["variant"] for r in rs if r["variant"]), None), **counts_of(rs),
                  "duration": round(sum(r["duration"] for r in rs), 3)} for b, rs in sorted(boards.items())]
    grouped = []
    for b, rs in sorted(boards.items()):
        scenarios = defaultdict(list)
        for r in rs:
            scenarios[r["scenario"] or "-"].append(r)
        grouped.append({"board": b, "scenarios": sorted(scenarios.items())})
    return {
        "run": run, "counts": counts_of(rows), "total": len(rows),
        "failures": [r for r in rows if r["outcome"] in FAILED],
        "per_board": per_board,
        "verdicts": [r for r in rows if r["scenario"]],
        "grouped": grouped,
    }


def per_day(runs: list[dict]) -> list[tuple[str, dict]]:
    """Result counts per day (oldest first) over `runs`."""
    days: dict[str, Counter] = defaultdict(Counter)
    for run in runs:
        days[run["started_at"][:10]].update(run["counts"])
    return [(day, {o: days[day].get(o, 0) for o in OUTCOMES}) for day in sorted(days)]


def trends(store: Store, last: int = TREND_RUNS) -> dict:
    """The last `last` runs: counts and duration per run (oldest first), failure rate per scenario."""
    runs = list(reversed(store.runs(limit=last)))
    ids = [r["id"] for r in runs]
    rows = [r for run_id in ids for r in store.results(run_id)]
    scenarios: defaultdict[str, Counter] = defaultdict(Counter)
    for r in rows:
        if r["scenario"] and r["outcome"] != "skipped":
            scenarios[r["scenario"]]["runs"] += 1
            scenarios[r["scenario"]]["failed"] += r["outcome"] in FAILED
    rates = [{"scenario": s, "runs": c["runs"], "failed": c["failed"], "rate": round(c["failed"] / c["runs"], 3)}
             for s, c in sorted(scenarios.items())]
    return {"runs": runs, "rates": rates, "flaky": flaky(store)}


def flaky(store: Store, last: int = FLAKY_RUNS) -> list[dict]:
    """Tests (on a board) that passed only after a retry, or whose verdict flipped across their
    last `last` results on one revision; each with its history, newest first."""
    runs = {r["id"]: r for r in store.runs(limit=last * 5)}
    history = defaultdict(list)
    for run_id in sorted(runs):
        for r in store.results(run_id):
            if r["outcome"] != "skipped":
                history[(r["test_id"], r["board"])].append({**r, "revision": runs[run_id]["revision"]})
    found = []
    for (test_id, board), rs in sorted(history.items()):
        reasons = [f"passed after {r['retries']} retr{'y' if r['retries'] == 1 else 'ies'} in run {r['run_id']}"
                   for r in rs[-last:] if r["outcome"] == "passed" and r["retries"]]
        by_revision = defaultdict(list)
        for r in rs:
            by_revision[r["revision"]].append(r["outcome"] == "passed")
        for revision, passed in by_revision.items():
            passed = passed[-last:]
            flips = sum(a != b for a, b in zip(passed, passed[1:], strict=False))
            if flips:
                reasons.append(f"verdict flipped {flips} time{'s' * (flips > 1)} over {len(passed)} runs of "
                               f"revision {revision or 'unknown'}")
        if reasons:
            found.append({"test_id": test_id, "board": board, "reasons": reasons,
                          "history": [{"run_id": r["run_id"], "outcome": r["outcome"], "revision": r["revision"],
                                       "retries": r["retries"]} for r in reversed(rs[-last:])]})
    return found


def provisioning(store: Store, last: int = TREND_RUNS) -> dict:
    """Provisioning batches: units per hour, refusals, per-fixture throughput."""
    batches = []
    fixtures: defaultdict[str, dict] = defaultdict(lambda: {"units": 0, "provisioned": 0, "seconds": 0.0})
    refusals = []
    for run in store.runs(limit=last, kind="provision"):
        rows = store.results(run["id"])
        done = Counter(r["observed"] for r in rows)
        hours = (run["duration"] or 0) / 3600
        batches.append({"run": run, "units": len(rows), "provisioned": done["provisioned"],
                        "refused": done["refused"], "failed": done["failed"],
                        "per_hour": round(done["provisioned"] / hours, 1) if hours else None})
        for r in rows:
            f = fixtures[r["board"]]
            f["units"] += 1
            f["provisioned"] += r["observed"] == "provisioned"
            f["seconds"] += r["duration"]
            if r["observed"] in ("refused", "failed"):
                refusals.append({**r, "run_started": run["started_at"]})
    per_fixture = [{"board": b, **f, "mean": round(f["seconds"] / f["units"], 1) if f["units"] else None,
                    "per_hour": round(f["provisioned"] * 3600 / f["seconds"], 1) if f["seconds"] else None}
                   for b, f in sorted(fixtures.items())]
    return {"batches": batches, "fixtures": per_fixture, "refusals": refusals}
