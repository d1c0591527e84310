"""How a board's USB-serial bridge drives its reset and boot pins from the host's DTR and RTS.

The ESP32 DevKitC wires CP2102's DTR and RTS through two cross-coupled transistors (the
"auto-program" circuit): EN is pulled low only when RTS is asserted and DTR is not, GPIO0 only when
DTR is asserted and RTS is not. Both asserted or both released leave the chip alone, which is why
opening a port (pyserial asserts both) does not reset the board, and why esptool's classic reset
(DTR off, RTS on; wait; DTR on, RTS off; wait; DTR off) enters the ROM loader.

An ST-LINK's virtual COM port has no wire from DTR/RTS to NRST, so STM32 boards ignore them.
"""

from rig.sim.board import EN_RELEASE_DELAY, Board
from rig.variants import facts


class ControlLines:
    """DTR/RTS as the host sets them on one board's console, applied to the board's pins."""

    def __init__(self, board: Board):
        self._board = board
        self._dtr = False
        self._rts = False
        self._en_low = False

    def set(self, dtr: bool | None = None, rts: bool | None = None) -> None:
        if dtr is not None:
            self._dtr = dtr
        if rts is not None:
            self._rts = rts
        if not facts(self._board.variant).auto_program:
            return
        self._board.set_gpio0(self._dtr and not self._rts)
        en_low = self._rts and not self._dtr
        if en_low and not self._en_low:
            self._board.hold("en")
        elif self._en_low and not en_low:
            # EN is the chip enable: leaving it is a power-on reset (rst:0x1 POWERON_RESET).
            self._board.release("en", EN_RELEASE_DELAY, cause="power-on")
        self._en_low = en_low
