"""`rig demo`: the main job - an OTA campaign with faults on every board of the virtual rack."""

from pathlib import Path

import click

from rig.cli.console import out
from rig.cli.options import board_source, coordinator_option, rack_option, select_option
from rig.cli.ota import DEFAULT_WORK, run_plan, summary_table
from rig.cli.results import results_option
from rig.ota import scenarios

# What the demo shows on each board: an update that survives a power cut mid-download, a bad
# image refused while the running one runs on, a crashing image rolled back.
DEMO = ("power cut at 50% of the download", "corrupt image", "crash on boot")


@click.command()
@rack_option
@coordinator_option
@select_option
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_WORK, show_default=True,
              help="Folder for keys and artefacts.")
@results_option
def demo(rack, coordinator, select, work, results_url):
    """Run the main job on a rack (the virtual one by default) and summarise it.

    Starts the virtual lab if it is not running, then on every board: a power cut in the middle
    of the download (the board must resume and end up updated), a corrupted image (refused; the
    running image keeps running) and firmware that crashes on boot (rolled back). Each verdict
    comes from reading the board back through its probe or ROM loader and from its console.
    `rig ota --help` runs any other scenario.
    """
    with board_source(rack, coordinator, select, holder="rig-demo") as (inventory, client, where):
        boards = inventory.boards
        out.rule(f"rig demo on {where}: {len(boards)} boards x {len(DEMO)} scenarios")
        plan = [(board, scenarios.by_name(name)) for board in boards for name in DEMO]
        verdicts = run_plan(where, plan, work, results=results_url, kind="demo", coordinator=client)
    out.print(summary_table(verdicts))
    rollbacks = [line for v in verdicts for line in v.rollbacks]
    out.print(f"rollbacks seen: {len(rollbacks)}")
    for line in rollbacks:
        out.print(f"  rollback: {line}", markup=False)
    failed = [v for v in verdicts if not v.ok]
    if failed:
        for v in failed:
            out.print(f"FAILED {v.summary()}", markup=False)
        raise SystemExit(1)
    out.print(f"all {len(verdicts)} verdicts as expected")
