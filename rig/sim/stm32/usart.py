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
as on the line.

With CR3.DMAR set and a DMA channel serving the USART's RX request, each complete byte is taken
by the DMA instead (RXNE never shows): the machine hands the bytes over (`complete`, `take`)
under the same rule - a byte no sooner than the line brings it, and only once the core has had
a character time of cycles per byte since the previous one (or waited). ISR.IDLE sets when the
line has been quiet for one character after the last byte was taken (ICR.IDLECF clears it;
IDLEIE raises the interrupt). Not modelled: the H7's FIFO mode, parity, framing and overrun
errors (a host's burst waits on the line instead of overrunning RDR).
"""

from collections import deque
from collections.abc import Callable

CR1, CR2, CR3, BRR, ISR, ICR, RDR, TDR = 0x00, 0x04, 0x08, 0x0C, 0x1C, 0x20, 0x24, 0x28
CR1_UE, CR1_RE, CR1_TE, CR1_IDLEIE, CR1_RXNEIE = 1 << 0, 1 << 2, 1 << 3, 1 << 4, 1 << 5
CR3_DMAR = 1 << 6
ISR_IDLE, ISR_RXNE, ISR_TC, ISR_TXE = 1 << 4, 1 << 5, 1 << 6, 1 << 7
ICR_IDLECF = 1 << 4


class Usart:
    def __init__(self, transmit: Callable[[bytes], None], now: Callable[[], float], pclk_hz: Callable[[], int]):
        self._transmit = transmit
        self._now = now
        self._pclk_hz = pclk_hz
        self._rx: deque[tuple[int, float]] = deque()  # (byte, clock time it is complete)
        self.dma_serves: Callable[[], bool] = lambda: False  # a DMA channel takes the RX requests (the machine's)
        self.reset()

    def reset(self) -> None:
        self._regs: dict[int, int] = {}
        self._rx.clear()
        self._line_free_at = 0.0  # when the last byte on the line is complete
        self.held = False  # RDR was read: the next byte waits for the core's character time
        self._idle_armed = False  # a byte was taken since IDLE last set: the next quiet character sets it
        self._idle = False  # ISR.IDLE

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
        return ready is not None and self._now() >= ready and not self.by_dma()

    # -- reception by DMA
    def by_dma(self) -> bool:
        """Received bytes go to a DMA channel rather than RDR."""
        return bool(self._regs.get(CR3, 0) & CR3_DMAR) and self.dma_serves()

    def complete(self, now: float) -> int:
        """How many bytes on the line are complete by `now`."""
        # By index: `receive` may append from another thread meanwhile (an iterator would fail).
        rx, n = self._rx, 0
        while n < len(rx) and rx[n][1] <= now:
            n += 1
        return n

    def complete_at(self, n: int) -> float | None:
        """Clock time the n-th byte on the line (from 1) is complete, None if fewer are coming."""
        return self._rx[n - 1][1] if 0 < n <= len(self._rx) else None

    def peek(self, n: int) -> bytes:
        """The first n bytes on the line (there are at least n)."""
        return bytes(self._rx[i][0] for i in range(n))

    def take(self, n: int) -> None:
        """The first n bytes on the line were received (and moved by the DMA)."""
        for _ in range(n):
            self._rx.popleft()
        self._idle_armed = self._idle_armed or n > 0

    @property
    def idle_at(self) -> float | None:
        """Clock time ISR.IDLE sets, if it is going to (the line quiet for a character)."""
        if self._idle_armed and not self._rx:
            return self._line_free_at + self._char_time()
        return None

    def _idle_flag(self) -> bool:
        at = self.idle_at
        if at is not None and self._now() >= at:
            self._idle, self._idle_armed = True, False
        return self._idle

    def read(self, off: int) -> int:
        if off == ISR:
            return ISR_TXE | ISR_TC | (ISR_RXNE if self._rxne() else 0) | (ISR_IDLE if self._idle_flag() else 0)
        if off == RDR:
            if not self._rxne():
                return 0
            self.held = True
            self._idle_armed = True
            return self._rx.popleft()[0]
        return self._regs.get(off, 0)

    def write(self, off: int, value: int) -> None:
        if off == TDR:
            if self._regs.get(CR1, 0) & (CR1_UE | CR1_TE) == CR1_UE | CR1_TE:
                self._transmit(bytes([value & 0xFF]))
        elif off == ICR:
            if value & ICR_IDLECF:
                self._idle = False
        elif off not in (ISR, RDR):
            self._regs[off] = value

    def irq(self) -> bool:
        """The USART's interrupt line."""
        cr1 = self._regs.get(CR1, 0)
        return bool(cr1 & CR1_RXNEIE and self._rxne() or cr1 & CR1_IDLEIE and self._idle_flag())

    def idle_read(self, off: int) -> bool:
        """True for a status read that finds nothing to do: a waiting loop's typical access."""
        return off == ISR and not self._rxne()
