"""The rack daemon: every virtual board of a rack file, its console, power outlet and probe, on loopback.

Started detached by `rig lab up` as `python -m rig.sim.daemon --rack FILE --state DIR --name NAME
[--timing none|datasheet]`;
its stdout/stderr is the lab's log file. It announces itself in the registry (rig.sim.registry)
only once every port listens, and on SIGTERM stops the boards, flushes their flash files and
removes its registry entry. Starting it again is a power cycle: flash files stay, RAM does not.
Every board runs in threads of its own (firmware, console clients, probe clients), so with the
datasheet timing model (rig.sim.timing) one board's flash and UART waits never hold up another's.
"""

import argparse
import functools
import logging
import os
import signal
import sys
import threading
from pathlib import Path

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


class Lab:
    def __init__(self, rack_path: Path, state: Path, watchdog_timeout: float, timing: str = "none",
                 stm32_core: str = "model"):
        virtual = virtual_boards(rack_path)
        self._closers = []
        self.boards: dict[str, Board] = {}
        self.entry: dict = {"rack": str(rack_path.resolve()), "pid": os.getpid(), "state": str(state.resolve()),
                            "timing": timing, "stm32_core": stm32_core, "boards": {}}
        outlets: dict[str, dict[int, Board]] = {}
        try:
            for spec in virtual:
                board = Board(spec.id, spec.variant, LAYOUTS[spec.flash_layout], state / spec.id,
                              functools.partial(boot.run, stm32_core=stm32_core), watchdog_timeout, timing)
                self.boards[spec.id] = board
                board.set_power(True)  # the rack's outlets come up on, before the probe attaches
                self.entry["boards"][spec.id] = self._serve_board(spec, board)
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
                switch = _bind(f"power switch {url}", lambda u=url, o=by_index: PowerSwitch(u, o))
                self._closers.append(switch.close)
                self.entry["power"] = {"host": switch.host, "port": switch.port}
            control = ControlEndpoint(self.boards)
            self._closers.append(control.close)
            self.entry["control"] = {"host": control.host, "port": control.port}
        except BaseException:
            self.close()
            raise

    def _serve_board(self, spec: RackBoard, board: Board) -> dict:
        console = spec.resources.get("NetworkSerialPort")
        if console is None:
            raise RigError(f"board {spec.id}: the virtual lab serves consoles as NetworkSerialPort; add one")
        host, port = console.get("host", "127.0.0.1"), int(console["port"])
        server = _bind(f"board {spec.id}: console {host}:{port}", lambda: Rfc2217Server(board, host, port))
        self._closers.append(server.close)
        pty = PtyConsole(board)
        self._closers.append(pty.close)
        entry = {"variant": spec.variant, "console": {"rfc2217": server.port, "host": host, "pty": pty.path}}
        if spec.probe is not None:
            swd = _probe_server(board, host)
            if swd is not None:
                self._closers.append(swd.close)
                entry["swd"] = {"host": host, "port": swd.port, "unique_id": spec.probe}
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
        raise RigError(f"{what}: cannot listen ({reason}); is another lab up? see `rig lab status`") from exc


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
    parser.add_argument("--stm32-core", choices=boot.STM32_CORES, default="model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        lab = Lab(args.rack, args.state, args.watchdog, args.timing, args.stm32_core)
    except RigError as exc:
        print(f"rig: error: {exc}", file=sys.stderr, flush=True)
        return 2
    registry.write(args.name, lab.entry)
    log.info("lab %s up: %s", args.name, ", ".join(lab.boards))
    while not stop.wait(0.5):
        pass
    log.info("lab %s stopping", args.name)
    lab.close()
    registry.remove(args.name, os.getpid())
    return 0


if __name__ == "__main__":
    sys.exit(main())
