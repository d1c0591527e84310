"""`rig power on|off|cycle`: switch a board's outlet."""

import click

from rig.cli.bench import bench_options, held_board
from rig.cli.console import out


@click.group()
def power():
    """Switch a board's power outlet through labgrid's power driver for its switch.

    \b
      rig power cycle --board stm32h7-1
      rig power off --rack targets/bench.yaml --board esp32-devkit-1
    """


@power.command()
@bench_options
def on(rack, coordinator, board_id):
    """Power the board on (a cold boot: RAM and reset counters start afresh)."""
    with held_board(rack, board_id, "power", coordinator) as drivers:
        drivers.power_on()
    out.print(f"{board_id}: power on")


@power.command()
@bench_options
def off(rack, coordinator, board_id):
    """Cut the board's power."""
    with held_board(rack, board_id, "power", coordinator) as drivers:
        drivers.power_off()
    out.print(f"{board_id}: power off")


@power.command()
@bench_options
def cycle(rack, coordinator, board_id):
    """Power off, wait the board's off time, power on.

    The off time is the rack's (`drivers: {NetworkPowerDriver: {delay: SECONDS}}` in the board's
    targets entry), else 2 s on real boards and 0.2 s on virtual ones."""
    with held_board(rack, board_id, "power", coordinator) as drivers:
        drivers.power_cycle()
    out.print(f"{board_id}: power cycled")
