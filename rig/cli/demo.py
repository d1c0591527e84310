"""`rig demo`: the main job on the virtual rack, step by step, ending in a summary table."""

import click
from rich.table import Table

from rig.cli.console import out
from rig.cli.options import rack_option
from rig.lab import load_rack


@click.command()
@rack_option
def demo(rack):
    """Run the main job on a rack (the virtual one by default) and summarise it.

    Today: validate the rack and show its boards. The job grows with the project: bring the
    virtual lab up, build and sign the firmware, flash every board, run an OTA campaign with
    faults.
    """
    inventory = load_rack(rack)
    out.rule(f"rig demo on {rack}")
    table = Table(title="boards", title_justify="left")
    for column in ("board", "variant", "console", "power"):
        table.add_column(column)
    for b in inventory.boards:
        table.add_row(b.id, b.variant, b.console, b.power or "-")
    out.print(table)
