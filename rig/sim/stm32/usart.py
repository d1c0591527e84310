"""The console USART at register level (the USART block both parts share: RM0433 §48, RM0367 §24).

Transmit: a byte written to TDR while CR1.UE and CR1.TE are set goes to the board's console at
once; the wire time is charged by the board (rig.sim.board.Board.transmit), so TXE and TC always
read set. Receive (CR1.RE): host bytes come in at the line's rate - each is complete one
character time (10 bits at the rate BRR sets from the core clock) after the one before it, and
RDR shows it (ISR.RXNE) once it is complete and the core has had a character time's worth of
its own cycles since the previous byte was read (or slept: WFI). So firmware never sees a byte
sooner than on silicon, and an emulated core, slower than the part, still gets between two
bytes the instructions the part would execute in a character time - the machine lets the next
byte in when its slice of `cycles_per_char()` instructions has run (`release`). RXNEIE raises
the USART's interrupt while RXNE is set. Bytes that arrive while the receiver is off are lost,
as on the line. Not modelled: the H7's FIFO mode, parity, framing and overrun errors (a host's
burst waits on the line instead of overrunning RDR).
"""

from collections import deque
from collections.abc import Callable

CR1, CR2, CR3, BRR, ISR, ICR, RDR, TDR = 0x00, 0x04, 0x08, 0x0C, 0x1C, 0x20, 0x24, 0x28
CR1_UE, CR1_RE, CR1_TE, CR1_RXNEIE = 1 << 0, 1 << 2, 1 << 3, 1 << 5
ISR_RXNE, ISR_TC, ISR_TXE = 1 << 5, 1 << 6, 1 << 7


class Usart:
    def __init__(self, transmit: Callable[[bytes], None], now: Callable[[], float], pclk_hz: Callable[[], int]):
        self._transmit = transmit
        self._now = now
        self._pclk_hz = pclk_hz
        self._rx: deque[tuple[int, float]] = deque()  # (byte, clock time it is complete)
        self.reset()

    def reset(self) -> None:
        self._regs: dict[int, int] = {}
        self._rx.clear()
        self._line_free_at = 0.0  # when the last byte on the line is complete
        self.held = False  # RDR was read: the next byte waits for the core's character time

    def _char_time(self) -> float:
        brr = self._regs.get(BRR, 0)
        return 10 * brr / self._pclk_hz() if brr else 10 / 115_200

    def receive(self, data: bytes) -> None:
        """Bytes the host sent, arrived at the RX pin (any thread)."""
        if self._regs.get(CR1, 0) & (CR1_UE | CR1_RE) == CR1_UE | CR1_RE and data:
            at, char = max(self._now(), self._line_free_at), self._char_time()
            self._rx.extend((byte, at + (i + 1) * char) for i, byte in enumerate(data))
            self._line_free_at = at + len(data) * char

    @property
    def rx_ready_at(self) -> float | None:
        """Clock time the next byte is in RDR (None: nothing on the line)."""
        return self._rx[0][1] if self._rx and not self.held else None

    def cycles_per_char(self) -> int:
        return int(self._char_time() * self._pclk_hz())

    def release(self) -> None:
        """The core had its character time since the last read."""
        self.held = False

    def pending_rx(self) -> int:
        """Bytes still on the line (RDR's included)."""
        return len(self._rx)

    def _rxne(self) -> bool:
        ready = self.rx_ready_at
        return ready is not None and self._now() >= ready

    def read(self, off: int) -> int:
        if off == ISR:
            return ISR_TXE | ISR_TC | (ISR_RXNE if self._rxne() else 0)
        if off == RDR:
            if not self._rxne():
                return 0
            self.held = True
            return self._rx.popleft()[0]
        return self._regs.get(off, 0)

    def write(self, off: int, value: int) -> None:
        if off == TDR:
            if self._regs.get(CR1, 0) & (CR1_UE | CR1_TE) == CR1_UE | CR1_TE:
                self._transmit(bytes([value & 0xFF]))
        elif off not in (ISR, RDR, ICR):
            self._regs[off] = value

    def irq(self) -> bool:
        """The USART's interrupt line."""
        return bool(self._regs.get(CR1, 0) & CR1_RXNEIE) and self._rxne()

    def idle_read(self, off: int) -> bool:
        """True for a status read that finds nothing to do: a waiting loop's typical access."""
        return off == ISR and not self._rxne()
