"""Export a rack's boards to a labgrid coordinator: the exporter configuration and its processes.

`rig lab export` writes a labgrid exporter configuration from the rack file (one group per board,
named by the board id) and runs the real `labgrid-exporter` on it, then makes one place per board
on the coordinator (rig.lab.coordinator.sync_places).

How each part of a board crosses the network:
- console: a local serial port (USBSerialPort, RawSerialPort) is exported as labgrid exports it,
  through ser2net, and reaches clients as a NetworkSerialPort. A virtual board's pty is exported
  the same way - except an ESP32's: its DevKit auto-program circuit is wired to the bridge's DTR and
  RTS, and a pty has no modem lines (ser2net never answers RFC2217 SET_CONTROL on one), so an
  ESP32 exports the virtual lab's own RFC2217 port, which plays ser2net's part with the lines.
  A console that already is a NetworkSerialPort is passed on as it is.
- power: NetworkPowerPort (and the other power resources) as labgrid exports them.
- debug probe: pyocd's own remote probe protocol, so pyocd on the client runs unchanged with the
  unique id `remote:HOST:PORT` (its built-in `remote` probe type). A real probe gets a
  `pyocd server --uid ID --port 0 --allow-remote` started by the export, which announces the port
  the server bound; a virtual board's SWD port already speaks that protocol and is exported as it
  is. Chosen over a USB/IP export of the ST-LINK because it needs no kernel module on the client
  and works for virtual probes alike.
- RigBoard is not exported (labgrid's wire format carries no lists, and its tags are a list): its
  facts become the place's tags, and a client makes the RigBoard of a remote board from them.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from rig.errors import RigError
from rig.lab.inventory import Rack

SERIAL_LOCAL = ("USBSerialPort", "RawSerialPort")
START_TIMEOUT_S = 20.0


def exporter_config(rack: Rack, lab: dict | None, probe_ports: dict[str, int] | None = None,
                    hostname: str = "127.0.0.1") -> dict:
    """The labgrid exporter configuration for every board of `rack`.

    `lab` is the rack's running virtual lab (rig.sim.registry entry) for virtual boards;
    `probe_ports` the port of the pyocd probe server of each real board's probe (by board id).
    """
    from rig.sim import registry

    config: dict = {}
    for board in rack.boards:
        board = registry.live_board(board)  # a virtual board's power switch on the port its lab bound
        group: dict = {}
        live = (lab or {}).get("boards", {}).get(board.id) if board.virtual else None
        if board.virtual and live is None:
            raise RigError(f"board {board.id} is virtual and its lab is not up; start it with "
                           f"`rig lab up --rack {rack.files[0]}`")
        for cls, args in board.resources.items():
            if cls == "RemotePlace":
                raise RigError(f"board {board.id} is a RemotePlace already; export it on the host it hangs on")
            if cls == "RigBoard":
                continue
            if cls == "RigDebugProbe":
                group[cls] = {"unique_id": _probe_id(board, live, probe_ports, hostname),
                              "target_type": args["target_type"]}
            elif cls in SERIAL_LOCAL or (cls == "NetworkSerialPort" and live is not None):
                group.update(_console(board, cls, args, live))
            else:
                group[cls] = dict(args)
        config[board.id] = group
    return config


def _console(board, cls, args, live) -> dict:
    speed = args.get("speed", 115200)
    if live is None:
        return {cls: dict(args)}
    console = live["console"]
    if board.facts.auto_program:
        return {"NetworkSerialPort": {"host": console["host"], "port": console["rfc2217"], "speed": speed}}
    return {"RawSerialPort": {"port": console["pty"], "speed": speed}}


def _probe_id(board, live, probe_ports, hostname) -> str:
    if live is not None:
        swd = live.get("swd")
        if not swd:
            raise RigError(f"board {board.id}: its lab serves no SWD port")
        return f"remote:{swd['host']}:{swd['port']}"
    port = (probe_ports or {}).get(board.id)
    if port is None:
        raise RigError(f"board {board.id}: no pyocd probe server started for probe {board.probe}")
    return f"remote:{hostname}:{port}"


def write_config(path: Path, config: dict) -> Path:
    from rig.atomic import write_text

    write_text(path, yaml.safe_dump(config, sort_keys=False))
    return path


def exporter_command(config_path: Path, coordinator: str, name: str, hostname: str) -> list[str]:
    exe = shutil.which("labgrid-exporter") or str(Path(sys.executable).with_name("labgrid-exporter"))
    return [exe, "--coordinator", coordinator, "--name", name, "--hostname", hostname, str(config_path)]


def probe_server_command(unique_id: str, port: int) -> list[str]:
    exe = shutil.which("pyocd") or str(Path(sys.executable).with_name("pyocd"))
    return [exe, "server", "--uid", unique_id, "--port", str(port), "--allow-remote"]


def wait_for_exporter(coordinator, name: str, groups, proc: subprocess.Popen, log: Path) -> None:
    """Until every group of the exporter has its resources on the coordinator."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        published = coordinator.resources().get(name, {})
        if all(any(e.data for e in published.get(g, {}).values()) for g in groups):
            return
        if proc.poll() is not None:
            raise RigError(f"labgrid-exporter {name} exited with status {proc.returncode}; see {log}")
        time.sleep(0.2)
    raise RigError(f"labgrid-exporter {name}: its resources did not reach coordinator {coordinator.address} "
                   f"within {START_TIMEOUT_S:.0f} s; see {log}")


def start_probe_server(unique_id: str, log_path: Path,
                       timeout: float = START_TIMEOUT_S) -> tuple[subprocess.Popen, int]:
    """`pyocd server` for probe `unique_id` on a port it binds itself (port 0), and that port, read from
    the line pyocd logs once it serves ("Serving debug probe ... on port N"). A port picked here and
    handed on could be taken by another process before pyocd binds it. pyocd binds only once it has
    the probe (it waits for one to be plugged in), so a probe not there within `timeout` s is a RigError."""
    import re

    serving = re.compile(rf"Serving debug probe .* \({re.escape(unique_id)}\) on port (\d+)".encode())
    with open(log_path, "ab") as log:
        start = log.tell()  # the log of earlier runs is kept: read only this server's lines
        proc = subprocess.Popen(probe_server_command(unique_id, 0), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        with open(log_path, "rb") as log:
            log.seek(start)
            found = serving.search(log.read())
        if found:
            return proc, int(found.group(1))
        if proc.poll() is not None:
            raise RigError(f"pyocd server for probe {unique_id} exited with status {proc.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RigError(f"pyocd server for probe {unique_id} is not serving after {timeout:g} s "
                           f"(is the probe connected?); see {log_path}")
        time.sleep(0.1)


def run_export(rack: Rack, lab: dict | None, coordinator: str, name: str, hostname: str, folder: Path,
               on_ready=None) -> None:
    """Run the exporter (and the real probes' servers) until it exits or this process is stopped."""
    import signal

    from rig.lab.coordinator import Coordinator

    folder.mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen] = []

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        probe_ports = {}
        for board in rack.boards:
            if board.probe and not board.virtual:
                server, probe_ports[board.id] = start_probe_server(board.probe, folder / f"pyocd-{board.id}.log")
                children.append(server)
        config = write_config(folder / "exporter.yaml", exporter_config(rack, lab, probe_ports, hostname))
        log_path = folder / "exporter.log"
        with open(log_path, "ab") as log:
            # labgrid starts ser2net in the exporter's working directory, where ser2net leaves its
            # pid file: the export's own folder, not wherever the user ran `rig lab export`.
            exporter = subprocess.Popen(exporter_command(config.resolve(), coordinator, name, hostname),
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        cwd=folder)
        children.append(exporter)
        with Coordinator(coordinator, holder=f"export-{name}") as client:
            wait_for_exporter(client, name, [b.id for b in rack.boards], exporter, log_path)
            places = client.sync_places(name, rack.boards)
        if on_ready is not None:
            on_ready(places)
        status = exporter.wait()
        raise RigError(f"labgrid-exporter {name} exited with status {status}; see {log_path}")
    finally:
        signal.signal(signal.SIGTERM, previous)
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
