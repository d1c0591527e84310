"""The virtual lab's instruments: a power-cut relay that fires at flash operation N, a write-path fault.

A real rig places a power cut by what it observes (rig.ota.triggers: bytes served, upload offset,
console line, time). Inside a swap nothing is observable from outside, so to cut power in the
middle of one the virtual lab offers what a bench would need a logic analyser on the flash bus
for: its control endpoint (rig/sim/control.py) arms a cut at the board's Nth flash operation from
now. Campaigns use it only to place cuts; verdicts never read it.

The endpoint's address is in the lab's registry entry, a JSON file written by `rig lab up`.
"""

import json
import urllib.error
import urllib.request
from pathlib import Path

from rig.errors import RigError
from rig.sim import registry  # the registry file's location and format; no live sim object is touched


class LabInstruments:
    def __init__(self, rack: str | Path):
        entry = registry.read(registry.lab_name(rack))
        if entry is None:
            raise RigError(f"a power cut at a flash operation needs the virtual lab of {rack} running; "
                           f"start it with `rig lab up --rack {rack}`")
        control = entry["control"]
        self._url = f"http://{control['host']}:{control['port']}/boards"

    def arm_cut(self, board_id: str, after_ops: int, tear: bool = False, off_s: float = 0.2,
                region: tuple[int, int] | None = None) -> None:
        """Cut the board's power when `after_ops` more flash operations completed (of those that
        touch `region`, an (offset, size), if given), torn if `tear`; back after off_s."""
        where = f"&region={region[0]}:{region[1]}" if region else ""
        self._call("POST", f"/{board_id}/cut?op={after_ops}&tear={int(tear)}&off={off_s}{where}")

    def arm_flip(self, board_id: str, after_writes: int, region: tuple[int, int] | None = None) -> None:
        """The board's flash write after `after_writes` more (into `region`) has one bit flipped on its way."""
        where = f"&region={region[0]}:{region[1]}" if region else ""
        self._call("POST", f"/{board_id}/flip?write={after_writes}{where}")

    def disarm(self, board_id: str) -> None:
        self._call("POST", f"/{board_id}/disarm")

    def power_cycles(self, board_id: str) -> int:
        """Power-on events of the board since the lab started (outlet and relay alike)."""
        return self._call("GET", f"/{board_id}")["power_cycles"]

    def _call(self, method: str, path: str) -> dict:
        request = urllib.request.Request(self._url + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                return json.load(reply)
        except urllib.error.HTTPError as exc:
            raise RigError(f"lab control {path}: {json.load(exc).get('error', exc.reason)}") from None
        except OSError as exc:
            raise RigError(f"lab control endpoint {self._url} does not answer ({exc}); restart the lab") from None
