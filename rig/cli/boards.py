"""`rig boards`: what is in a rack."""

import click
from rich.table import Table

from rig.cli.console import out
from rig.cli.options import rack_option
from rig.lab import load_rack
from rig.variants import NAMES


@click.command()
@rack_option
@click.option("--variant", help=f"Only boards of this variant ({', '.join(NAMES)}).")
@click.option("--tag", "tags", multiple=True, help="Only boards carrying this tag; repeat to require several.")
def boards(rack, variant, tags):
    """List the boards of a rack: id, variant, console, power outlet, probe and tags.

    The file is validated first; every problem is printed as one line naming the file, the board
    and the field, and the command exits with status 2.
    """
    inventory = load_rack(rack)
    table = Table(title=f"{len(inventory.boards)} boards in {rack}", title_justify="left")
    for column in ("board", "variant", "virtual", "console", "power", "probe", "flash layout", "tags"):
        table.add_column(column, overflow="fold")
    for b in inventory.select(variant=variant, tags=tags):
        table.add_row(
            b.id,
            b.variant,
            "yes" if b.virtual else "no",
            b.console,
            b.power or "-",
            b.probe or "-",
            b.flash_layout,
            ", ".join(b.tags) or "-",
        )
    out.print(table)
