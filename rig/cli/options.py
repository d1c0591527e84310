"""Options shared by several verbs, so they read and behave the same everywhere."""

import contextlib
import os

import click

DEFAULT_RACK = "targets/virtual-rack.yaml"

rack_option = click.option(
    "--rack",
    default=lambda: os.environ.get("RIG_RACK", DEFAULT_RACK),
    show_default=f"$RIG_RACK or {DEFAULT_RACK}",
    metavar="FILE",
    help="labgrid environment file describing the boards.",
)

coordinator_option = click.option(
    "--rig-coordinator",
    "coordinator",
    default=lambda: os.environ.get("RIG_COORDINATOR"),
    metavar="HOST:PORT",
    help="Take the boards from this labgrid coordinator's places instead of the rack file "
         "(`rig lab export` makes them).  [default: $RIG_COORDINATOR]",
)

select_option = click.option(
    "--rig-select",
    "select",
    multiple=True,
    metavar="KEY=VALUE[,...]",
    help="With --rig-coordinator: only places whose tags match (variant=, layout=, rack=, tag=); repeatable.",
)


@contextlib.contextmanager
def board_source(rack: str, coordinator: str | None, select=(), holder: str = "rig"):
    """(boards, client, where): the rack file's boards, or with a coordinator its places' boards
    and the client that reserves and acquires them (closed, releasing them all, at the end)."""
    from rig.lab import Rack, load_rack

    if not coordinator:
        yield load_rack(rack), None, rack
        return
    from rig.lab.coordinator import Coordinator, parse_select

    wanted = parse_select(select)
    with Coordinator(coordinator, holder=holder) as client:
        yield Rack((), tuple(client.boards(wanted))), client, f"coordinator {coordinator}"
