"""The flash layout of the board a driver is bound to (from its RigBoard resource)."""

from rig.errors import RigError
from rig.image.layouts import LAYOUTS, Layout
from rig.variants import facts


def board_layout(board_resource) -> Layout:
    return LAYOUTS[board_resource.flash_layout or facts(board_resource.variant).default_layout]


def check_range(layout: Layout, offset: int, size: int) -> None:
    """Refuse an access outside the flash before any tool touches the board."""
    end = layout.geometry.size
    if offset < 0 or size < 0 or offset + size > end:
        raise RigError(f"flash range 0x{offset:x}+0x{size:x} is outside the 0x{end:x}-byte flash of "
                       f"layout {layout.name}; use offsets from the start of flash")
