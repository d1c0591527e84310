"""`rig health`: check boards as a lab admin does, quarantine the bad ones, return them to service."""

import click
from rich.markup import escape
from rich.table import Table

from rig.cli.console import out
from rig.cli.options import DEFAULT_RACK, board_source, coordinator_option, select_option
from rig.cli.results import results_option
from rig.errors import RigError

HELP = """Health-check boards, list quarantined ones, return one to service.

\b
Per board (rig.results.health): a power cycle, a line on the console (the boot banner), the debug
probe (STM32) or the ROM loader (ESP32) answering, and a flash read. A board that fails is
quarantined with the reason: pytest sessions skip its tests (one line says so) until it is
released. A board that fails several different tests in a row that pass on other boards is
quarantined by the pytest plugin too (--rig-quarantine-after).

\b
  rig health --rack targets/virtual-rack.yaml         check every board of the rack
  rig health --rack targets/virtual-rack.yaml --board esp32-1
  rig health                                          quarantined boards and last checks
  rig health --release esp32-1                        back to service
  rig health --rig-coordinator coord:20408 --rig-select rack=bench-1   the places of a coordinator

Exit status: 0 when every board checked is healthy, 1 when one is not, 2 on bad input.
"""


@click.command(help=HELP)
@click.option("--rack", default=None, metavar="FILE", help="Check every board of this rack file.")
@click.option("--board", "board_ids", multiple=True, metavar="ID", help="Only this board (repeatable).")
@click.option("--release", "release", default=None, metavar="BOARD", help="Return a quarantined board to service.")
@coordinator_option
@select_option
@results_option
def health(rack, board_ids, release, coordinator, select, results_url):
    from rig.results.store import Store

    store = Store(results_url)
    if release:
        if rack or board_ids or coordinator:
            raise RigError("--release takes a board alone: `rig health --release BOARD`")
        was = store.release(release)
        if was is None:
            out.print(f"board {release} is not quarantined; nothing to release", markup=False)
            return
        out.print(f"board {release} back in service (quarantined since {was['at'][:19]}: {was['reason']})",
                  markup=False)
        return
    if rack is None and not coordinator:
        if board_ids:
            raise RigError(f"--board needs --rack FILE (e.g. --rack {DEFAULT_RACK})")
        _list(store)
        return
    with board_source(rack, coordinator, select, holder="rig-health") as (inventory, client, _):
        _check(rack, inventory, client, board_ids, store)


def _check(rack_path, rack, client, board_ids, store) -> None:
    from rig.cli.ota import ensure_lab
    from rig.results.health import check_boards

    boards = [rack.board(b) for b in board_ids] if board_ids else list(rack.boards)
    if client is None:
        ensure_lab(rack_path)  # remote boards are served on their exporters' hosts

    def show(h):
        mark = "[green]ok[/green]" if h.ok else "[red]FAILED[/red]"
        out.print(f"{mark} {h.board}: " + ", ".join(
            f"{s['name']} {'ok' if s['ok'] else 'failed'} ({s['seconds']:.1f} s)" for s in h.steps))
        if not h.ok:
            out.print(f"   {h.board} quarantined: {h.reason}", markup=False)
            out.print(f"   `rig health --release {h.board}` returns it once it is fixed", markup=False)

    checked = check_boards(boards, store, on_health=show, coordinator=client)
    bad = [h for h in checked if not h.ok]
    out.print(f"{len(checked) - len(bad)} of {len(checked)} boards healthy", markup=False)
    if bad:
        raise SystemExit(1)


def _list(store) -> None:
    quarantined = store.quarantined()
    table = Table(title="quarantined boards", title_justify="left")
    for column in ("board", "since (UTC)", "by", "reason"):
        table.add_column(column)
    for board, q in sorted(quarantined.items()):
        table.add_row(escape(board), q["since"][:19].replace("T", " "), escape(q["who"]), escape(q["reason"]))
    if quarantined:
        out.print(table)
    else:
        out.print("no board is quarantined")
