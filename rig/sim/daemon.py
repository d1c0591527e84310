"""The rack daemon: every virtual board of a rack file, its console, power outlet and probe, on loopback.

Started detached by `rig lab up` as `python -m rig.sim.daemon --rack FILE --state DIR --name NAME
[--timing none|datasheet]`;
its stdout/stderr is the lab's log file. A port the rack gives as 0 is the lab's to choose: it takes
the port it had in its last run if that is free (a restarted lab keeps its addresses, as a real rack
does), else any free one - bound, never guessed, so no two labs collide. It announces itself in the
registry (rig.sim.registry) only once every port listens, with the resolved rack (the rack file
with the ports it bound), and on SIGTERM stops the boards, flushes their flash files and
removes its registry entry. Starting it again is a power cycle: flash files stay, RAM does not.
Every board runs in threads of its own (firmware, console clients, probe clients), so with the
datasheet timing model (rig.sim.timing) one board's flash and UART waits never hold up another's.
"""

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

from rig.atomic import write_text
from rig.errors import RigError
from rig.image.layouts import LAYOUTS
from rig.lab import Board as RackBoard
from rig.lab import load_rack
from rig.sim import boot, registry
from rig.sim.board import DEFAULT_WATCHDOG_TIMEOUT, Board
from rig.sim.control import ControlEndpoint
from rig.sim.power import PowerSwitch
from rig.sim.pty_console import PtyConsole
from rig.sim.rfc2217_server import Rfc2217Server
from rig.sim.timing import MODELS

log = logging.getLogger("rig.sim.daemon")
POWER_MODEL = "simplerest"
PORTS_FILE = "ports.json"  # in the state folder: the ports the lab bound in its last run


class Lab:
    def __init__(self, rack_path: Path, state: Path, watchdog_timeout: float, timing: str = "none", *, name: str):
        self.name = name  # the lab's name in the registry: its probes' ids carry it
        virtual = virtual_boards(rack_path)
        self._closers = []
        self.boards: dict[str, Board] = {}
        self.entry: dict = {"rack": str(rack_path.resolve()), "pid": os.getpid(), "state": str(state.resolve()),
                            "timing": timing, "boards": {}}
        outlets: dict[str, dict[int, Board]] = {}
        last = _last_ports(state)
        try:
            for spec in virtual:
                board = Board(spec.id, spec.variant, LAYOUTS[spec.flash_layout], state / spec.id,
                              boot.run, watchdog_timeout, timing)
                self.boards[spec.id] = board
                board.set_power(True)  # the rack's outlets come up on, before the probe attaches
                self.entry["boards"][spec.id] = self._serve_board(spec, board, last["consoles"].get(spec.id))
                power = spec.resources.get("NetworkPowerPort")
                if power is not None:
                    if power.get("model") != POWER_MODEL:
                        raise RigError(f"board {spec.id}: NetworkPowerPort model {power.get('model')!r}; "
                                       f"the virtual lab serves model {POWER_MODEL!r}")
                    outlets.setdefault(power["host"], {})[int(power.get("index", 0))] = board
            if len(outlets) > 1:
                raise RigError(f"{rack_path}: virtual boards name {len(outlets)} power switch URLs; "
                               "the virtual lab serves one - give every NetworkPowerPort the same host")
            for url, by_index in outlets.items():
                switch = _listen(f"power switch {url}", lambda p, u=url, o=by_index: PowerSwitch(u, o, p),
                                 _url_port(url), last["power"])
                self._closers.append(switch.close)
                self.entry["power"] = {"host": switch.host, "port": switch.port}
            control = ControlEndpoint(self.boards)
            self._closers.append(control.close)
            self.entry["control"] = {"host": control.host, "port": control.port}
            _remember_ports(state, self.entry)
        except BaseException:
            self.close()
            raise

    def _serve_board(self, spec: RackBoard, board: Board, last_port: int | None) -> dict:
        console = spec.resources.get("NetworkSerialPort")
        if console is None:
            raise RigError(f"board {spec.id}: the virtual lab serves consoles as NetworkSerialPort; add one")
        host, port = console.get("host", "127.0.0.1"), int(console["port"])
        server = _listen(f"board {spec.id}: console {host}:{port}", lambda p: Rfc2217Server(board, host, p),
                         port, last_port)
        self._closers.append(server.close)
        pty = PtyConsole(board)
        self._closers.append(pty.close)
        entry = {"variant": spec.variant, "console": {"rfc2217": server.port, "host": host, "pty": pty.path}}
        if spec.probe is not None:
            swd = _probe_server(board, host)
            if swd is not None:
                self._closers.append(swd.close)
                entry["swd"] = {"host": host, "port": swd.port, "unique_id": registry.probe_id(spec.probe, self.name)}
        return entry

    def close(self) -> None:
        """Stop every server at once (each may wait out its poll interval), then the boards, whose
        close flushes their flash files: nothing may write flash after that."""
        stoppers = [threading.Thread(target=_quietly, args=(close,)) for close in self._closers]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        for board in self.boards.values():
            _quietly(board.close)
        self._closers.clear()
        self.boards.clear()


def _quietly(close) -> None:
    try:
        close()
    except Exception:  # shutting down: one stuck server must not keep the flash unflushed
        log.exception("while stopping")


def virtual_boards(rack_path: Path) -> list[RackBoard]:
    """The boards of a rack file the virtual lab serves; RigError if the file is bad or has none."""
    virtual = [b for b in load_rack(rack_path).boards if b.virtual]
    if not virtual:
        raise RigError(f"{rack_path}: no board has `virtual: true`; nothing for the virtual lab to serve")
    return virtual


def _bind(what: str, start):
    try:
        return start()
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise RigError(f"{what}: cannot listen ({reason}); is another lab up? see `rig lab status`, "
                       "or give the port as 0 and let the lab choose") from exc


def _listen(what: str, start, port: int, last: int | None):
    """start(port) for a port the rack names; for port 0 (the lab's choice) start(last run's port)
    if it is still free, else start(0): the kernel's free port."""
    if port == 0 and last:
        try:
            return start(last)
        except OSError:
            log.info("%s: port %d of the last run is taken; taking another", what, last)
    return _bind(what, lambda: start(port))


def _url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port if parts.port is not None else 80


def _last_ports(state: Path) -> dict:
    """{"power": port or None, "consoles": {board id: port}} of the lab's last run in this state folder."""
    try:
        last = json.loads((state / PORTS_FILE).read_text())
        return {"power": last.get("power"), "consoles": dict(last.get("consoles", {}))}
    except (OSError, ValueError, AttributeError):
        return {"power": None, "consoles": {}}


def _remember_ports(state: Path, entry: dict) -> None:
    ports = {"power": entry.get("power", {}).get("port"),
             "consoles": {board_id: b["console"]["rfc2217"] for board_id, b in entry["boards"].items()}}
    write_text(state / PORTS_FILE, json.dumps(ports))


def resolved_rack(rack_path: Path, entry: dict, name: str) -> str:
    """The rack as this lab serves it: one labgrid environment file (a folder's files merged) whose
    virtual boards' console ports, power switch URL and probe ids are the ones the lab serves."""
    files = sorted(rack_path.glob("*.yaml")) if rack_path.is_dir() else [rack_path]
    doc: dict = {}
    for f in files:
        for key, value in (yaml.safe_load(f.read_text()) or {}).items():
            if key == "targets":
                doc.setdefault("targets", {}).update(value)
            elif key == "imports":
                doc["imports"] = list(dict.fromkeys([*doc.get("imports", []), *value]))
            elif key in ("paths", "images") and isinstance(value, dict):
                # labgrid resolves them against the file's folder; the resolved rack lives elsewhere.
                doc.setdefault(key, {}).update({k: str((f.parent / v).resolve()) if isinstance(v, str) else v
                                                for k, v in value.items()})
            else:
                doc.setdefault(key, value)
    for board_id, served in entry["boards"].items():
        target = doc["targets"][board_id]
        console = _resource(target, "NetworkSerialPort")
        assert console is not None  # the lab served it from this resource
        console["port"] = served["console"]["rfc2217"]
        power = _resource(target, "NetworkPowerPort")
        if power is not None and "power" in entry:
            parts = urlsplit(power["host"])
            power["host"] = urlunsplit(parts._replace(netloc=f"{parts.hostname}:{entry['power']['port']}"))
        probe = _resource(target, "RigDebugProbe")
        if probe is not None and "swd" in served:
            probe["unique_id"] = served["swd"]["unique_id"]
    header = (f"# The rack {rack_path} as lab {name} (pid {entry['pid']}) serves it: the ports it bound.\n"
              "# Written by the lab when it came up, removed when it stops; edit the rack, not this file.\n")
    return header + yaml.safe_dump(doc, sort_keys=False)


def _resource(target: dict, cls: str) -> dict | None:
    """A target's resource arguments, from labgrid's mapping form or its list of one-key mappings."""
    resources = target["resources"]
    items = resources.items() if isinstance(resources, dict) else (next(iter(r.items())) for r in resources)
    return next((args for name, args in items if name == cls), None)


def _probe_server(board: Board, host: str):
    """The SWD server of the STM32 model (rig.sim.stm32.swd.SwdServer(board, host): .port, .close())."""
    try:
        from rig.sim.stm32.swd import SwdServer
    except ModuleNotFoundError as exc:
        if exc.name != "rig.sim.stm32.swd":
            raise
        log.warning("board %s: no SWD server (rig.sim.stm32.swd not installed)", board.id)
        return None
    return _bind(f"board {board.id}: SWD server", lambda: SwdServer(board, host))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rig.sim.daemon", description=__doc__.splitlines()[0])
    parser.add_argument("--rack", required=True, type=Path)
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--watchdog", type=float, default=DEFAULT_WATCHDOG_TIMEOUT)
    parser.add_argument("--timing", choices=MODELS, default="none")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        lab = Lab(args.rack, args.state, args.watchdog, args.timing, name=args.name)
    except RigError as exc:
        print(f"rig: error: {exc}", file=sys.stderr, flush=True)
        return 2
    registry.write(args.name, lab.entry, resolved_rack(args.rack.resolve(), lab.entry, args.name))
    log.info("lab %s up: %s", args.name, ", ".join(lab.boards))
    while not stop.wait(0.5):
        pass
    log.info("lab %s stopping", args.name)
    lab.close()
    registry.remove(args.name, os.getpid())
    return 0


if __name__ == "__main__":
    sys.exit(main())
