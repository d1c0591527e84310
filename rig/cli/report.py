"""`rig report`: one run of the results store as a self-contained HTML file."""

from pathlib import Path

import click

from rig.cli.console import out
from rig.cli.results import results_option
from rig.errors import RigError


@click.command()
@results_option
@click.argument("run_id", type=int, required=False)
@click.option("--last", is_flag=True, help="The latest run.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, metavar="FILE",
              help="The HTML file to write.")
def report(results_url, run_id, last, output):
    """Write one run as a single HTML file: summary, failures first with their console slices, the
    per-board table, the OTA verdicts with rollbacks. It needs no network to open (CSS inline, charts
    as SVG): a CI artefact.

    \b
      rig report --last -o report.html
      rig report 12 -o run-12.html --results postgresql+psycopg://rig@db/results
    """
    from rig.results.report import write
    from rig.results.store import Store

    if (run_id is None) == (not last):
        raise RigError("name a run: `rig report RUN_ID -o FILE` or `rig report --last -o FILE`")
    store = Store(results_url)
    if last:
        run_id = store.last_run_id()
        if run_id is None:
            raise RigError("the results store has no run yet")
    write(store, run_id, output)
    out.print(f"run {run_id} written to {output}", markup=False)
