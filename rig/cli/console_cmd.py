"""`rig console`: watch (and talk to) a board's console from the bench."""

import re
import sys
import time

import click
from pexpect import TIMEOUT

from rig.cli.bench import bench_options, held_board
from rig.cli.console import out


@click.command("console")
@bench_options
@click.option("--power-cycle", is_flag=True,
              help="Cycle power after the console is open, to see the board boot from its first line.")
@click.option("--send", "lines", multiple=True, metavar="LINE",
              help="Send LINE (with CR LF) once connected; repeatable.")
@click.option("--until", metavar="REGEX",
              help="Stop at the first console line matching REGEX (exit 1 if it never comes).")
@click.option("--timeout", type=float, metavar="SECONDS", help="Stop after this long.  [default: run until Ctrl-C]")
def console_cmd(rack, coordinator, board_id, power_cycle, lines, until, timeout):
    """Print a board's console lines as they arrive.

    The console is the board's serial port as labgrid sees it (an RFC2217 URL from an exporter
    or the virtual rack, or a local device). With --power-cycle the console opens before the power
    comes back, so no boot line is lost.

    \b
      rig console --board stm32h7-1 --power-cycle --until "rig: alive"
      rig console --board esp32-1 --timeout 5
    """
    pattern = re.compile(until) if until else None
    with held_board(rack, board_id, "console", coordinator) as drivers:
        console = drivers.console
        drivers.target.activate(console)
        if power_cycle:
            # Lines the running board sent after the console opened belong to the boot before: the
            # cycle drains them while the power is off (else an old `rig: alive` would end --until).
            drivers.power_cycle()
        for line in lines:
            console.send_line(line)
        found = _follow(console, pattern, None if timeout is None else time.monotonic() + timeout)
    if pattern and not found:
        out.print(f"[red]no line matched {until!r}[/red]")
        sys.exit(1)


def _follow(console, pattern, deadline) -> bool:
    """Print whole lines until one matches `pattern` or the deadline passes."""
    pending = b""
    while deadline is None or time.monotonic() < deadline:
        try:
            pending += console.read(size=1, timeout=0.2)
        except TIMEOUT:
            continue
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            text = raw.decode("utf-8", "replace").rstrip("\r")
            out.print(text, markup=False, emoji=False, soft_wrap=True)  # console bytes verbatim
            if pattern and pattern.search(text):
                return True
    return False
