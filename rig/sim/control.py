"""The lab's instruments on loopback: arm a power cut at a flash operation, break a console's
wires, read counters.

These are what a real rig has besides the boards (a relay in the supply, a counter on the flash
bus, a switch in the console cable). Fault campaigns use them to place a cut, health-check tests
to make a board look like one with a broken cable; no verdict is ever read from here.

    GET  /boards                          {id: {"powered", "flash_ops", "power_cycles", "timing",
                                               "charged": {"erase", "program", "uart", "swd"},
                                               "console": "ok"|"broken"}}
                                          (timing: the lab's model; charged: seconds it made the
                                          board wait, per kind - all 0 with the model "none")
    GET  /boards/<id>                     the same for one board
    POST /boards/<id>/cut?op=N&tear=0|1&off=SECONDS[&region=OFFSET:SIZE]
                                          cut power when N more flash operations have completed
                                          (operation N+1 torn if tear=1), back on after `off` s;
                                          with a region, only operations touching those flash
                                          bytes count (a bus analyser's address filter)
    POST /boards/<id>/flip?write=N[&region=OFFSET:SIZE]
                                          the flash write after N more writes (into the region)
                                          reaches the part with one bit flipped
    POST /boards/<id>/disarm              forget an armed cut
    POST /boards/<id>/console?state=broken|ok
                                          cut the console's wires (nothing the board sends reaches
                                          a host, nothing a host sends reaches the board: no boot
                                          banner, no ROM loader over the UART) or mend them
"""

import json
import re

from rig.sim.board import DEFAULT_CUT_OFF_TIME, Board
from rig.sim.http_endpoint import HttpEndpoint

_ROUTE = re.compile(r"/boards(?:/(?P<id>[^/]+)(?:/(?P<action>cut|flip|disarm|console))?)?/?")


def counters(board: Board) -> dict:
    return {"powered": board.powered, "flash_ops": board.flash.ops, "power_cycles": board.power_cycles,
            "timing": board.timing.model, "charged": dict(board.timing.charged),
            "console": "broken" if board.console_broken else "ok"}


class ControlEndpoint:
    def __init__(self, boards: dict[str, Board], host: str = "127.0.0.1", port: int = 0):
        def handle(method, path, query):
            match = _ROUTE.fullmatch(path)
            if not match:
                return _json(404, {"error": f"no such endpoint {path}; see GET /boards"})
            board_id, action = match["id"], match["action"]
            if board_id is None:
                return _json(200, {b.id: counters(b) for b in boards.values()})
            board = boards.get(board_id)
            if board is None:
                return _json(404, {"error": f"no board {board_id!r}; boards: {', '.join(boards)}"})
            if action is None:
                return _json(200, counters(board))
            if method != "POST":
                return _json(405, {"error": f"{action} needs POST"})
            if action == "disarm":
                board.flash.disarm()
                return _json(200, counters(board))
            if action == "console":
                if query.get("state") not in ("broken", "ok"):
                    return _json(400, {"error": "console needs state=broken or state=ok"})
                board.console_broken = query["state"] == "broken"
                return _json(200, counters(board))
            try:
                region = _region(query.get("region"))
            except ValueError:
                return _json(400, {"error": "region needs OFFSET:SIZE (integers, 0x allowed)"})
            if action == "flip":
                try:
                    writes = int(query["write"])
                except (KeyError, ValueError):
                    return _json(400, {"error": "flip needs write=N (int), optional region=OFFSET:SIZE"})
                board.flash.arm_flip(writes, region)
                return _json(200, counters(board) | {"flip": {"write": writes}})
            try:
                op = int(query["op"])
                tear = query.get("tear", "0") == "1"
                off = float(query.get("off", DEFAULT_CUT_OFF_TIME))
            except (KeyError, ValueError):
                return _json(400, {"error": "cut needs op=N (int), optional tear=0|1 and off=SECONDS"})
            if op < 0 or off < 0:
                return _json(400, {"error": "op and off must not be negative"})
            board.arm_cut(op, tear, off, region)
            return _json(200, counters(board) | {"armed": {"op": op, "tear": tear, "off": off}})

        self._http = HttpEndpoint(host, port, handle, "control")
        self.host, self.port = self._http.host, self._http.port

    def close(self) -> None:
        self._http.close()


def _region(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    offset, _, size = text.partition(":")
    return int(offset, 0), int(size, 0)


def _json(status: int, body: dict) -> tuple[int, str, str]:
    return status, json.dumps(body), "application/json"
