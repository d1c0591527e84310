"""pyocd probe plugin: the virtual STM32 boards of live labs appear as debug probes.

pyocd loads it through the `pyocd.probe` entry point group (see pyproject.toml), so the user runs
pyocd unchanged: `pyocd list` shows one probe per STM32 board of every running lab, by the
unique id of its rack file (e.g. RIGVIRT-H7-0001), and `pyocd load/erase/cmd -u <id>` reach it.
The probes are found in the lab registry files that `rig lab up` writes
(rig.sim.registry); a file whose daemon has died is skipped.

The transport is pyocd's own remote-probe client (TCPClientProbe): only discovery and naming are
added here. Loading the plugin also registers the `stm32l073xx` target type (pyocd_target.py).
"""

from pyocd.board.board import Board
from pyocd.board.board_ids import BoardInfo
from pyocd.core.plugin import Plugin
from pyocd.probe.tcp_client_probe import TCPClientProbe

from rig.sim import registry
from rig.sim.stm32 import pyocd_target
from rig.sim.stm32.parts import PARTS


def registered_probes() -> list[dict]:
    """Every STM32 board of every live lab: {unique_id, host, port, board, variant, lab}."""
    found = []
    for lab_name, lab in registry.live_labs().items():
        for board_id, board in lab.get("boards", {}).items():
            swd = board.get("swd")
            if swd:
                found.append({"unique_id": swd["unique_id"], "host": swd["host"], "port": int(swd["port"]),
                              "board": board_id, "variant": board["variant"], "lab": lab_name})
    return found


class VirtualSwdProbe(TCPClientProbe):
    """A virtual board's debug port, reached over pyocd's remote-probe protocol."""

    def __init__(self, entry: dict):
        super().__init__(f"{entry['host']}:{entry['port']}")
        self._entry = entry

    @classmethod
    def get_all_connected_probes(cls, unique_id=None, is_explicit=False):
        # pyocd filters these by a part of the id (`-u RIGVIRT-H7-0001` finds RIGVIRT-H7-0001@<lab>)
        return [cls(e) for e in registered_probes()]

    @classmethod
    def get_probe_with_id(cls, unique_id, is_explicit=False):
        """The probe with exactly this id (a lab's probe ids are unique: rig.sim.registry.probe_id)."""
        return next((cls(e) for e in registered_probes() if e["unique_id"] == unique_id), None)

    @property
    def unique_id(self):
        return self._entry["unique_id"]

    @property
    def vendor_name(self):
        return "rig"

    @property
    def product_name(self):
        return f"virtual SWD: {self._entry['board']} ({self._entry['lab']})"

    @property
    def associated_board_info(self):
        target = PARTS[self._entry["variant"]].target_type
        return BoardInfo(name=f"rig {self._entry['variant']}", target=target, binary=None)

    def create_associated_board(self):
        # Lets pyocd pick the target type without -t, as it does for a Nucleo's on-board ST-LINK;
        # an explicit -t still wins (Board prefers the target_override option to board info).
        return Board(self.session, board_info=self.associated_board_info)


class VirtualSwdProbePlugin(Plugin):
    def load(self):
        pyocd_target.register()
        return VirtualSwdProbe

    @property
    def name(self):
        return "rigvirt"

    @property
    def description(self):
        return "rig virtual lab: SWD of the virtual STM32 boards"
