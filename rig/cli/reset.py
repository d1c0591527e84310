"""`rig reset`: restart a board the way its hardware allows."""

import click

from rig.cli.bench import bench_options, held_board
from rig.cli.console import out


@click.command()
@bench_options
@click.option("--power", "by_power", is_flag=True, help="Cycle power instead (a cold boot, RAM lost).")
def reset(rack, coordinator, board_id, by_power):
    """Reset a board: ESP32 through its EN line (the console's RTS), STM32 through the debug
    probe's reset, other boards by cycling power.

    \b
      rig reset --board esp32-1
      rig reset --board stm32l0-1 --power
    """
    with held_board(rack, board_id, "reset", coordinator) as drivers:
        if by_power:
            drivers.power_cycle()
        else:
            drivers.target.activate(drivers.reset)
            drivers.reset.reset()
    out.print(f"{board_id}: reset{' (power cycle)' if by_power else ''}")
