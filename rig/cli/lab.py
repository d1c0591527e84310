"""`rig lab up|down|reset|status|url`: run the virtual rack of a targets file in the background."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click
from rich.table import Table

from rig.cli.console import out
from rig.cli.options import rack_option
from rig.errors import RigError
from rig.lab import load_rack
from rig.sim import registry
from rig.sim.board import DEFAULT_WATCHDOG_TIMEOUT
from rig.sim.daemon import virtual_boards
from rig.sim.timing import MODELS

START_TIMEOUT = 20.0  # seconds for the daemon to listen on every port
STOP_TIMEOUT = 10.0  # seconds for the daemon to flush flash and exit after SIGTERM
ERROR_PREFIX = "rig: error: "

LAB_HELP = """Run the virtual boards of a rack file on loopback, as a real rack would serve them.

\b
Per board: the console as an RFC2217 server on the NetworkSerialPort port (pyserial, labgrid and
esptool open rfc2217://127.0.0.1:PORT; esptool resets the ESP32 through DTR/RTS) and as a pty
(/dev/pts/N, for smpclient and ser2net); power through the simplerest switch of the rack's
NetworkPowerPort URL; SWD for pyocd on the STM32 boards. Flash lives in files in the state folder,
so `down` then `up` is a power cycle, never a wipe; `reset` fits factory-fresh boards.

\b
A port given as 0 is the lab's to choose (the one of its last run if free, else any free port);
every rig verb and the pytest plugin then read the rack as the lab bound it, and `rig lab url`
prints an address for other tools. A lab is named after its rack's path: two checkouts' racks
of the same name are two labs.

\b
  rig lab up --rack targets/virtual-rack.yaml
  rig lab status --rack targets/virtual-rack.yaml
  esptool --port $(rig lab url --board esp32-1) flash-id
  rig lab down --rack targets/virtual-rack.yaml
"""


@click.group(help=LAB_HELP)
def lab():
    pass


@lab.command()
@rack_option
@click.option("--state", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Folder for flash images and the daemon log.  [default: .rig/lab/<rack name>]")
@click.option("--watchdog", type=click.FloatRange(min=0.1), default=DEFAULT_WATCHDOG_TIMEOUT, show_default=True,
              metavar="SECONDS", help="Watchdog timeout of the virtual firmware (a hung app resets after it).")
@click.option("--timing", type=click.Choice(MODELS), default=None,
              help="none (the default): flash, console and SWD take no time of their own; datasheet: each flash "
                   "erase and program, console byte and SWD transfer takes the part's typical time "
                   "(docs/virtual-lab.md).")
def up(rack, state, watchdog, timing):
    """Start the rack daemon in the background; returns once every board's ports listen.

    Running it again while the lab is up changes nothing (a --timing other than the running lab's
    is refused). The daemon's log is daemon.log in the state folder.
    """
    rack_path, name = _identify(rack)
    virtual_boards(rack_path)  # every problem of the file, reported before anything starts
    entry = registry.read(name)
    if entry is not None:
        _check_same_rack(entry, rack_path, name)
        if timing is not None and entry.get("timing", "none") != timing:
            raise RigError(f"lab {name} is up with --timing {entry.get('timing', 'none')}; stop it with "
                           f"`rig lab down --rack {rack}` to start it with --timing {timing}")
        out.print(f"lab {name} is already up (pid {entry['pid']}); see `rig lab status --rack {rack}`")
        return
    timing = timing or "none"
    state = (state or Path(".rig/lab") / name).resolve()
    log_path = state / "daemon.log"
    try:
        state.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            log_start = log.tell()
            proc = subprocess.Popen(
                [sys.executable, "-m", "rig.sim.daemon", "--rack", str(rack_path), "--state", str(state),
                 "--name", name, "--watchdog", str(watchdog), "--timing", timing],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
    except OSError as exc:
        raise RigError(f"state folder {state}: {exc.strerror}; pass a writable folder with --state DIR") from exc
    entry = _wait_for_daemon(proc, name, log_path, log_start)
    out.print(f"lab {name} up (pid {entry['pid']}), timing {timing}, state in {state}, "
              f"log {log_path}")
    _print_table(name, entry, rack_path)


@lab.command()
@rack_option
def down(rack):
    """Stop the rack daemon: the boards lose power, their flash files stay in the state folder."""
    rack_path, name = _identify(rack)
    entry = registry.read(name)
    if entry is None:
        raise RigError(f"lab {name} is not up, nothing to stop; start it with `rig lab up --rack {rack}`")
    _check_same_rack(entry, rack_path, name)
    _stop(entry, name)
    out.print(f"lab {name} down; flash kept in {entry.get('state')}")


@lab.command()
@rack_option
@click.option("--state", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="The state folder `up` was given.  [default: the running lab's, else .rig/lab/<rack name>]")
def reset(rack, state):
    """Put factory-fresh boards on the rack: blank flash, blank eFuses, readout protection off.

    What provisioning or tests left in the virtual boards (burnt eFuses, RDP level 1, images) is
    gone, as if new boards were fitted; the lab is stopped first if it is up. Start it again with
    `rig lab up`. Real boards are not touched: only the virtual boards' state folders are removed.
    """
    rack_path, name = _identify(rack)
    entry = registry.read(name)
    if entry is not None:
        _check_same_rack(entry, rack_path, name)
        _stop(entry, name)
    state = state or (Path(entry["state"]) if entry else Path(".rig/lab") / name)
    fitted = [board.id for board in virtual_boards(rack_path) if (state / board.id).is_dir()]
    for board_id in fitted:
        shutil.rmtree(state / board_id)
    out.print(f"lab {name}: {len(fitted)} board(s) factory-fresh ({', '.join(fitted) or 'none had a state yet'}); "
              f"start it with `rig lab up --rack {rack}`")


@lab.command()
@rack_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
def status(rack, as_json):
    """Show whether the lab is up and, per board, power, console URL, pty path and probe.

    \b
    --json prints {"lab", "running", "pid", "control", "timing", "resolved_rack" (the rack
    as the lab bound it: a labgrid environment file with the real ports), "boards": [{"id", "variant",
    "console" (rfc2217:// URL), "pty", "power" ("on"/"off"), "outlet" (its simplerest URL),
    "probe", "target", "swd", "flash_ops", "power_cycles", "charged_seconds"}]};
    charged_seconds: the time the timing model made the board wait so far, per kind (erase,
    program, uart, swd).
    """
    rack_path, name = _identify(rack)
    entry = registry.read(name)
    if entry is not None:
        _check_same_rack(entry, rack_path, name)
    if as_json:
        rows = _rows(entry, rack_path) if entry else []
        doc = {"lab": name, "running": entry is not None, "boards": rows}
        if entry:
            doc |= {"pid": entry["pid"], "state": entry.get("state"),
                    "control": _url(entry["control"]), "timing": entry.get("timing", "none"),
                    "resolved_rack": str(registry.resolved_path(name))}
        click.echo(json.dumps(doc, indent=2))
        return
    if entry is None:
        out.print(f"lab {name} is not up; start it with `rig lab up --rack {rack}`")
        return
    out.print(f"lab {name} up (pid {entry['pid']}), timing {entry.get('timing', 'none')}, "
              f"state in {entry.get('state')}")
    _print_table(name, entry, rack_path)


URL_KINDS = {"console": "console", "pty": "pty", "power": "outlet", "swd": "swd", "control": None}  # -> row key


@lab.command()
@rack_option
@click.option("--board", "board_id", metavar="ID", default=None,
              help="The board (needed for all but --what control).")
@click.option("--what", type=click.Choice(list(URL_KINDS)), default="console", show_default=True,
              help="console: its rfc2217:// URL; pty: its /dev/pts path; power: its outlet's simplerest URL; "
                   "swd: the probe server's host:port; control: the lab's control endpoint.")
def url(rack, board_id, what):
    """Print one address of the running lab, for tools that take one (esptool --port, pyserial, curl).

    \b
      esptool --port $(rig lab url --board esp32-1) flash-id
      curl $(rig lab url --board stm32h7-1 --what power)
    """
    rack_path, name = _identify(rack)
    entry = registry.read(name)
    if entry is None:
        raise RigError(f"lab {name} is not up; start it with `rig lab up --rack {rack}`")
    _check_same_rack(entry, rack_path, name)
    if what == "control":
        click.echo(_url(entry["control"]))
        return
    if board_id is None:
        raise RigError(f"--what {what} needs --board ID (boards: {', '.join(entry['boards'])})")
    row = next((r for r in _rows(entry, rack_path, live=False) if r["id"] == board_id), None)
    if row is None:
        raise RigError(f"lab {name} serves no board {board_id!r} (boards: {', '.join(entry['boards'])})")
    address = row[URL_KINDS[what]]
    if address is None:
        raise RigError(f"board {board_id} has no {what} in lab {name}")
    click.echo(address)


def _stop(entry: dict, name: str) -> None:
    """Stop the lab's daemon (SIGTERM, then SIGKILL after STOP_TIMEOUT); its boards lose power."""
    pid = entry["pid"]
    with contextlib.suppress(ProcessLookupError):  # it may have exited since the registry was read
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while registry.alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            registry.remove(name, pid)
            raise RigError(f"lab {name}: daemon {pid} ignored SIGTERM for {STOP_TIMEOUT:.0f} s and was killed; "
                           f"see {entry.get('state')}/daemon.log")
        time.sleep(0.05)


def _identify(rack) -> tuple[Path, str]:
    """The rack file's absolute path and the lab's name (rig.sim.registry.lab_name)."""
    return Path(rack).resolve(), registry.lab_name(rack)


def _check_same_rack(entry: dict, rack_path: Path, name: str) -> None:
    if entry.get("rack") != str(rack_path):
        raise RigError(f"lab {name} is up from another rack file, {entry.get('rack')}; "
                       f"stop it first with `rig lab down --rack {entry.get('rack')}`")


def _wait_for_daemon(proc: subprocess.Popen, name: str, log_path: Path, log_start: int) -> dict:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        entry = registry.read(name)
        if entry is not None and entry.get("pid") == proc.pid:
            return entry
        if proc.poll() is not None:
            raise RigError(_daemon_error(log_path, log_start) or
                           f"lab {name}: the daemon exited with status {proc.returncode}; see {log_path}")
        time.sleep(0.05)
    proc.terminate()
    raise RigError(f"lab {name}: the daemon did not come up within {START_TIMEOUT:.0f} s; see {log_path}")


def _daemon_error(log_path: Path, log_start: int) -> str | None:
    """The daemon's own one-line error from this start, if it printed one."""
    with open(log_path, "rb") as f:
        f.seek(log_start)
        lines = f.read().decode(errors="replace").splitlines()
    errors = [line[len(ERROR_PREFIX):] for line in lines if line.startswith(ERROR_PREFIX)]
    return errors[-1] if errors else None


def _url(endpoint: dict) -> str:
    return f"http://{endpoint['host']}:{endpoint['port']}"


def _rows(entry: dict, rack_path: Path, live: bool = True) -> list[dict]:
    """Per board its addresses and, if `live`, its counters from the control endpoint."""
    rack = {b.id: b for b in registry.load_live_rack(rack_path).boards}
    boards = _counters(entry) if live else {}
    rows = []
    for board_id, b in entry["boards"].items():
        console, swd = b["console"], b.get("swd")
        counters = boards.get(board_id, {})
        rows.append({
            "id": board_id,
            "variant": b["variant"],
            "console": f"rfc2217://{console['host']}:{console['rfc2217']}",
            "pty": console["pty"],
            "power": "on" if counters.get("powered") else "off",
            "outlet": _outlet_url(rack.get(board_id)),
            "probe": rack[board_id].probe if board_id in rack else None,
            "target": rack[board_id].probe_target if board_id in rack else None,
            "swd": f"{swd['host']}:{swd['port']}" if swd else None,
            "flash_ops": counters.get("flash_ops"),
            "power_cycles": counters.get("power_cycles"),
            "charged_seconds": counters.get("charged"),
        })
    return rows


def _counters(entry: dict) -> dict:
    try:
        with urllib.request.urlopen(_url(entry["control"]) + "/boards", timeout=5) as reply:
            return json.load(reply)
    except OSError as exc:
        raise RigError(f"the lab's control endpoint {_url(entry['control'])} does not answer ({exc}); "
                       "restart the lab with `rig lab down` and `rig lab up`") from exc


def _outlet_url(board) -> str | None:
    """The simplerest URL that reads the board's outlet (GET it, or append /0 or /1 to switch)."""
    power = board.resources.get("NetworkPowerPort") if board else None
    if power is None:
        return None
    return power["host"].format(index=power.get("index", 0), value="").rstrip("/")


def _print_table(name: str, entry: dict, rack_path: Path) -> None:
    table = Table(title=f"lab {name}", title_justify="left")
    for column in ("board", "variant", "power", "console", "pty", "probe", "swd"):
        table.add_column(column)
    for row in _rows(entry, rack_path):
        probe = f"{row['probe']} ({row['target']})" if row["probe"] else "-"
        table.add_row(row["id"], row["variant"], row["power"], row["console"], row["pty"], probe, row["swd"] or "-")
    out.print(table)


@lab.command()
@rack_option
@click.option("--coordinator", required=True, metavar="HOST:PORT", help="The labgrid coordinator to export to.")
@click.option("--name", default=None, metavar="NAME",
              help="The exporter's name on the coordinator, standing for this host; places are NAME-<board>.  "
                   "[default: this host's name]")
@click.option("--hostname", default=None, metavar="HOST",
              help="Host name or address clients reach this host's consoles and probe servers at.  "
                   "[default: this host's name]")
def export(rack, coordinator, name, hostname):
    """Export the rack's boards to a labgrid coordinator and keep them exported until stopped.

    Writes the labgrid exporter configuration from the rack file, runs `labgrid-exporter` on it
    (consoles through ser2net, power as labgrid exports it, each real debug probe through a
    `pyocd server` of its own), and makes one place per board, NAME-<board>, tagged with the
    board's variant, layout and rig tags (`labgrid-client places` lists them). A virtual rack's
    lab must be up. Runs in the foreground, as a service does; SIGTERM or Ctrl-C stops it.

    \b
      rig lab export --rack targets/bench.yaml --coordinator lab-coord:20408 --name bench-3
    """
    import socket

    from rig.lab.export import run_export

    rack_path, lab_name = _identify(rack)
    inventory = load_rack(rack_path)
    name = name or socket.gethostname()
    run_export(inventory, registry.read(lab_name), coordinator, name, hostname or socket.gethostname(),
               Path(".rig/export") / name, on_ready=lambda places: out.print(
                   f"exporter {name}: {len(places)} place(s) on {coordinator}: {', '.join(places)}"))
