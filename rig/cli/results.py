"""`rig results`: the run history kept by the results store (rig.results)."""

from pathlib import Path

import click
from rich.table import Table

from rig.cli.console import out
from rig.database import safe_url
from rig.errors import RigError
from rig.results.store import Store

results_option = click.option("--results", "results_url", default=None, metavar="URL",
                              help="Results store (SQLAlchemy URL).  [default: $RIG_RESULTS or "
                                   "<runtime dir>/results.db]")

HELP = """The run history: pytest sessions, campaigns and provisioning batches, with their results.

\b
  rig results list                      the latest runs with their counts
  rig results show 12                   one run's results
  rig results import nightly.xml        a JUnit file from another host, as a run
  rig results flaky                     tests that passed only after a retry or flip their verdict
  rig report --last -o report.html      one run as a self-contained HTML file
  rig dashboard                         all of it in a browser
"""


@click.group(help=HELP)
def results():
    pass


@results.command("list")
@results_option
@click.option("--last", type=click.IntRange(min=1), default=20, show_default=True, help="How many runs.")
def list_runs(results_url, last):
    """The latest runs, newest first."""
    store = Store(results_url)
    table = Table(title=f"runs in {safe_url(store.url)}", title_justify="left")
    for column in ("run", "kind", "status", "started (UTC)", "revision", "passed", "failed", "error", "skipped"):
        table.add_column(column)
    for r in store.runs(limit=last):
        c = r["counts"]
        table.add_row(str(r["id"]), r["kind"], r["status"], r["started_at"][:19].replace("T", " "),
                      r["revision"] or "-", str(c["passed"]), str(c["failed"]), str(c["error"]), str(c["skipped"]))
    out.print(table)


@results.command()
@results_option
@click.argument("run_id", type=int)
def show(results_url, run_id):
    """One run's results."""
    store = Store(results_url)
    run = store.run(run_id)
    if run is None:
        raise RigError(f"no run {run_id} in {safe_url(store.url)}; `rig results list` shows the runs")
    out.print(f"run {run_id}: {run['kind']} {run['status']}, started {run['started_at']}, "
              f"revision {run['revision'] or '-'}, rack {run['rack'] or '-'}", markup=False)
    table = Table(title_justify="left")
    for column in ("test", "board", "outcome", "seconds", "verdict"):
        table.add_column(column)
    for r in store.results(run_id):
        verdict = f"{r['scenario']}: {r['observed']}" if r["scenario"] else (r["observed"] or "-")
        table.add_row(r["test_id"], r["board"] or "-", r["outcome"], f"{r['duration']:.1f}", verdict)
    out.print(table)


@results.command("import")
@results_option
@click.argument("junit", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--rack", default=None, metavar="FILE", help="The rack the run used, for the record.")
@click.option("--revision", default=None, help="The git revision the run tested, for the record.")
def import_junit(results_url, junit, rack, revision):
    """Bring in a JUnit XML file (from another host, a CI artefact) as a run."""
    from rig.results.junit import import_file, read_cases

    read_cases(junit)  # a bad file is one line before the store is touched
    store = Store(results_url)
    run_id, count = import_file(store, junit, rack=rack, revision=revision)
    run = store.runs(limit=1)[0] if store.last_run_id() == run_id else store.run(run_id)
    if run is None:
        raise RigError(f"run {run_id} is not in {safe_url(store.url)} after its import")
    out.print(f"imported {junit} as run {run_id}: {count} results ({run['status']}) into {safe_url(store.url)}",
              markup=False)


@results.command()
@results_option
@click.option("--last", type=click.IntRange(min=2), default=10, show_default=True,
              help="Results per test (on one revision) to look for a flipping verdict in.")
def flaky(results_url, last):
    """Tests that passed only after a retry, or whose verdict flips on one revision."""
    from rig.results.views import flaky as find

    found = find(Store(results_url), last)
    if not found:
        out.print("no flaky test")
        return
    for f in found:
        history = "".join(h["outcome"][0].upper() for h in f["history"])
        out.print(f"{f['test_id']} on {f['board'] or '-'}: {'; '.join(f['reasons'])} (newest first: {history})",
                  markup=False)
