"""The lab inventory: boards from targets/*.yaml, validated, selectable, handed to labgrid."""

from rig.lab.inventory import Board, Rack, load_rack

__all__ = ["Board", "Rack", "load_rack"]
