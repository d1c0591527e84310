"""What the bench verbs (flash, console, power, reset) share: the board option and a held board."""

import contextlib

import click
import requests

from rig.cli.options import coordinator_option, rack_option
from rig.drivers.pool import BoardPool
from rig.errors import RigError
from rig.lab import load_rack

board_option = click.option("--board", "board_id", required=True, metavar="ID",
                            help="Board id from the rack file, or a place name with --rig-coordinator "
                                 "(see `rig boards`).")


def bench_options(func):
    return rack_option(coordinator_option(board_option(func)))


def find_board(rack: str, board_id: str, client=None):
    """A place of the coordinator by name, else a board of the rack file (a RemotePlace there is
    reached through the coordinator)."""
    if client is not None and board_id in client.places():
        return client.board(board_id)
    board = load_rack(rack).board(board_id)
    if "RemotePlace" not in board.resources:
        return board
    if client is None:
        raise RigError(f"{board.source}: board {board_id} is a RemotePlace; pass --rig-coordinator HOST:PORT")
    return client.remote_board(board)


@contextlib.contextmanager
def held_board(rack: str, board_id: str, verb: str, coordinator: str | None = None):
    """The board's drivers while this command holds its lease (a local lease, or its place on the
    coordinator); refuses at once if a test holds it."""
    client = None
    try:
        if coordinator:
            from rig.lab.coordinator import Coordinator

            client = Coordinator(coordinator, holder=f"rig-{verb}")
        board = find_board(rack, board_id, client)
        pool = BoardPool(holder=f"rig {verb}", lease_timeout=0.0, coordinator=client)
        try:
            yield pool.take(board)
        except requests.RequestException as exc:
            raise RigError(f"board {board_id}: power switch did not answer ({exc.__class__.__name__}); "
                           "is it reachable (virtual rack: `rig lab up`)?") from None
        finally:
            pool.release()
    finally:
        if client is not None:
            client.close()
