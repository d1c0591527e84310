"""`rig boards`: what is in a rack."""

import click
from rich.table import Table

from rig.cli.console import out
from rig.cli.options import board_source, coordinator_option, rack_option, select_option
from rig.variants import NAMES


@click.command()
@rack_option
@coordinator_option
@select_option
@click.option("--variant", help=f"Only boards of this variant ({', '.join(NAMES)}).")
@click.option("--tag", "tags", multiple=True, help="Only boards carrying this tag; repeat to require several.")
def boards(rack, coordinator, select, variant, tags):
    """List the boards of a rack: id, variant, console, power outlet, probe and tags.

    The file is validated first; every problem is printed as one line naming the file, the board
    and the field, and the command exits with status 2. With --rig-coordinator the boards are the
    places on that labgrid coordinator (by place name, with the exporter - the host - they hang
    on); their consoles, power and probes are known once a place is acquired.
    """
    with board_source(rack, coordinator, select, holder="rig-boards") as (inventory, _, where):
        _print(inventory, where, bool(coordinator), variant, tags)


def _print(inventory, where: str, remote: bool, variant, tags) -> None:
    table = Table(title=f"{len(inventory.boards)} boards in {where}", title_justify="left")
    # Remote boards: the exporter (host) they hang on, in place of what is known only once acquired.
    columns = (("board", "variant", "host", "virtual", "flash layout", "tags") if remote else
               ("board", "variant", "virtual", "console", "power", "probe", "flash layout", "tags"))
    for column in columns:
        table.add_column(column, overflow="fold")
    for b in inventory.select(variant=variant, tags=tags):
        if remote:
            table.add_row(b.id, b.variant, b.host or "-", "yes" if b.virtual else "no", b.flash_layout,
                          ", ".join(b.tags) or "-")
            continue
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
