"""DMA1 at register level, as far as the console's receiver uses it: peripheral-to-memory
transfers the USART asks for (CR3.DMAR), one per received byte.

Two register layouts:
- the STM32L0's channel DMA (RM0367 §11): ISR/IFCR with four flags per channel, CCRx, CNDTRx,
  CPARx, CMARx per channel (20 bytes apart from 0x08), CSELR choosing each channel's request;
- the STM32H7's stream DMA (RM0433 §15) with DMAMUX1 in front (§17): LISR/HISR and LIFCR/HIFCR,
  SxCR, SxNDTR, SxPAR, SxM0AR, SxM1AR, SxFCR per stream (24 bytes apart from 0x10); DMAMUX1
  channel n feeds DMA1 stream n with the request its CnCR.DMAREQ_ID names.

A transfer does what the controller does for one request: it writes the byte at the memory
address (incremented with MINC), counts NDTR down, sets the half-transfer and transfer-complete
flags, reloads in circular mode and stops (EN cleared) at the end otherwise. A memory address the
controller cannot reach (the H7's TCMs: RM0433 Table 3) is a transfer error: TEIF, EN cleared.
A stream's interrupt line is up while one of its flags is set whose interrupt is enabled.
Not modelled: memory-to-peripheral and memory-to-memory transfers, the H7's FIFO and double-buffer
modes, priorities between streams, peripheral addresses other than the request's data register
(the transfer takes the received byte whatever PAR says), request generators and sync of DMAMUX.
"""

from collections.abc import Callable

# Flags, in each part's own bit order within a channel's/stream's group.
TCIF, HTIF, TEIF = "tc", "ht", "te"


class _Channel:
    """One channel or stream's transfer state (the registers both layouts share in meaning)."""

    def __init__(self) -> None:
        self.cr = 0
        self.ndtr = 0  # transfers left
        self.reload = 0  # NDTR as programmed (circular mode reloads it)
        self.par = 0
        self.mar = 0
        self.flags: set[str] = set()


class _Dma:
    """What both layouts do; subclasses map registers and bits."""

    EN = 1 << 0
    CHANNELS = 0
    # CR bits, per layout
    TCIE = HTIE = TEIE = CIRC = MINC = 0
    MSIZE_SHIFT = 0
    DIR_MASK = DIR_P2M = 0

    def __init__(self, mem_write: Callable[[int, bytes], None], reachable: Callable[[int, int], bool],
                 irqs: tuple[int, ...]):
        self._mem_write = mem_write
        self._reachable = reachable
        self._irqs = irqs  # NVIC line per channel/stream
        self.reset()

    def reset(self) -> None:
        self.ch = [_Channel() for _ in range(self.CHANNELS)]

    def serving(self, requests: tuple) -> int | None:
        """The enabled peripheral-to-memory channel/stream one of `requests` is routed to, if any."""
        for n, ch in enumerate(self.ch):
            if ch.cr & self.EN and ch.cr & self.DIR_MASK == self.DIR_P2M and self._routes(n) in requests:
                return n
        return None

    def _routes(self, n: int):
        raise NotImplementedError

    def transfer(self, n: int, data: bytes) -> int:
        """Received bytes, one request each, on channel/stream n: how many it took (it stops at the
        end of a non-circular transfer or at an error)."""
        ch = self.ch[n]
        width = 1 << (ch.cr >> self.MSIZE_SHIFT & 3)
        taken = 0
        while taken < len(data) and ch.cr & self.EN and ch.ndtr:
            # As many bytes as fit before NDTR's next landmark (half, end): one memory write.
            half = ch.reload // 2
            stop = ch.ndtr - half if ch.ndtr > half else ch.ndtr
            run = data[taken : taken + min(stop, len(data) - taken)]
            done = ch.reload - ch.ndtr  # transfers since the (re)load
            if ch.cr & self.MINC:
                addr = ch.mar + done * width
                payload = b"".join(bytes([b]) + bytes(width - 1) for b in run) if width > 1 else run
            else:
                addr, payload = ch.mar, bytes([run[-1]]) + bytes(width - 1)
            if not self._reachable(addr, len(payload)):
                ch.flags.add(TEIF)
                ch.cr &= ~self.EN
                break
            self._mem_write(addr, payload)
            taken += len(run)
            ch.ndtr -= len(run)
            if ch.ndtr == half and half:
                ch.flags.add(HTIF)
            if ch.ndtr == 0:
                ch.flags.add(TCIF)
                if ch.cr & self.CIRC:
                    ch.ndtr = ch.reload
                else:
                    ch.cr &= ~self.EN
        return taken

    def landmark(self, n: int) -> int:
        """Transfers until channel/stream n next sets a flag (half or end)."""
        ch = self.ch[n]
        half = ch.reload // 2
        return ch.ndtr - half if ch.ndtr > half else ch.ndtr

    def irq(self, irq: int) -> bool:
        """Whether the NVIC line `irq` is up because of a channel/stream of this controller."""
        for n, ch in enumerate(self.ch):
            if self._irqs[n] == irq and self._interrupting(ch):
                return True
        return False

    def _interrupting(self, ch: _Channel) -> bool:
        return bool((TCIF in ch.flags and ch.cr & self.TCIE) or (HTIF in ch.flags and ch.cr & self.HTIE)
                    or (TEIF in ch.flags and ch.cr & self.TEIE))

    def _write_cr(self, ch: _Channel, value: int) -> None:
        if value & self.EN and not ch.cr & self.EN:
            ch.reload = ch.ndtr  # the count programmed while disabled
        ch.cr = value

    def _write_ndtr(self, ch: _Channel, value: int) -> None:
        if not ch.cr & self.EN:  # read-only while enabled
            ch.ndtr = ch.reload = value & 0xFFFF


class ChannelDma(_Dma):
    """STM32L0 DMA1 (RM0367 §11.4): channels 1-7 at index 0-6, CSELR at 0xA8."""

    CHANNELS = 7
    TCIE, HTIE, TEIE, CIRC, MINC = 1 << 1, 1 << 2, 1 << 3, 1 << 5, 1 << 7
    DIR_MASK, DIR_P2M = 1 << 4, 0  # DIR=0: read from the peripheral
    MSIZE_SHIFT = 10
    ISR, IFCR, CSELR = 0x00, 0x04, 0xA8
    _BITS = {TCIF: 1, HTIF: 2, TEIF: 3}  # GIFx is bit 0 of each 4-bit group

    def reset(self) -> None:
        super().reset()
        self._cselr = 0

    def _routes(self, n: int):
        return n + 1, self._cselr >> 4 * n & 0xF  # (channel number, its CxS request)

    def read(self, off: int) -> int:
        if off == self.ISR:
            value = 0
            for n, each in enumerate(self.ch):
                group = sum(1 << self._BITS[f] for f in each.flags)
                value |= (group | (1 if group else 0)) << 4 * n
            return value
        if off == self.CSELR:
            return self._cselr
        ch, reg = self._register(off)
        if ch is None:
            return 0
        return (ch.cr, ch.ndtr, ch.par, ch.mar)[reg]

    def write(self, off: int, value: int) -> None:
        if off == self.IFCR:
            for n, each in enumerate(self.ch):
                group = value >> 4 * n & 0xF
                each.flags -= {f for f, bit in self._BITS.items() if group & 1 or group >> bit & 1}
            return
        if off == self.CSELR:
            self._cselr = value & 0x0FFF_FFFF
            return
        ch, reg = self._register(off)
        if ch is None:
            return
        if reg == 0:
            self._write_cr(ch, value & 0x7FFF)
        elif reg == 1:
            self._write_ndtr(ch, value)
        elif reg == 2:
            ch.par = value
        else:
            ch.mar = value

    def _register(self, off: int) -> tuple[_Channel | None, int]:
        if not 0x08 <= off < 0x08 + 20 * self.CHANNELS:
            return None, 0
        n, reg = divmod(off - 0x08, 20)
        return (self.ch[n], reg // 4) if reg < 16 else (None, 0)


class StreamDma(_Dma):
    """STM32H7 DMA1 (RM0433 §15.5): streams 0-7; requests come through DMAMUX1 (`mux`)."""

    CHANNELS = 8
    TEIE, HTIE, TCIE, CIRC, MINC = 1 << 2, 1 << 3, 1 << 4, 1 << 8, 1 << 10
    DIR_MASK, DIR_P2M = 3 << 6, 0
    MSIZE_SHIFT = 13
    LISR, HISR, LIFCR, HIFCR = 0x00, 0x04, 0x08, 0x0C
    _SHIFT = (0, 6, 16, 22)  # each stream's flag group within LISR/HISR
    _BITS = {TEIF: 3, HTIF: 4, TCIF: 5}

    def __init__(self, mem_write, reachable, irqs, mux: "Dmamux"):
        self.mux = mux
        super().__init__(mem_write, reachable, irqs)

    def reset(self) -> None:
        super().reset()
        self._fcr = [0x21] * self.CHANNELS  # SxFCR's reset value (direct mode)
        self._m1ar = [0] * self.CHANNELS

    def _routes(self, n: int):
        return self.mux.request(n)

    def read(self, off: int) -> int:
        if off in (self.LISR, self.HISR):
            value, first = 0, 0 if off == self.LISR else 4
            for i, shift in enumerate(self._SHIFT):
                for f in self.ch[first + i].flags:
                    value |= 1 << (shift + self._BITS[f])
            return value
        n, reg = self._register(off)
        if n is None:
            return 0
        ch = self.ch[n]
        return (ch.cr, ch.ndtr, ch.par, ch.mar, self._m1ar[n], self._fcr[n])[reg]

    def write(self, off: int, value: int) -> None:
        if off in (self.LIFCR, self.HIFCR):
            first = 0 if off == self.LIFCR else 4
            for i, shift in enumerate(self._SHIFT):
                self.ch[first + i].flags -= {f for f, bit in self._BITS.items() if value >> (shift + bit) & 1}
            return
        n, reg = self._register(off)
        if n is None:
            return
        ch = self.ch[n]
        if reg == 0:
            self._write_cr(ch, value & 0x01FF_FFFF)
        elif reg == 1:
            self._write_ndtr(ch, value)
        elif reg == 2:
            ch.par = value
        elif reg == 3:
            ch.mar = value
        elif reg == 4:
            self._m1ar[n] = value
        else:
            self._fcr[n] = value & 0xBF

    def _register(self, off: int) -> tuple[int | None, int]:
        if not 0x10 <= off < 0x10 + 24 * self.CHANNELS:
            return None, 0
        n, reg = divmod(off - 0x10, 24)
        return n, reg // 4


class Dmamux:
    """DMAMUX1 (RM0433 §17.6): CnCR at 4n; DMAREQ_ID in bits 6:0 routes request ID to channel n."""

    CHANNELS = 16

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._ccr = [0] * self.CHANNELS

    def request(self, n: int) -> int:
        return self._ccr[n] & 0x7F

    def read(self, off: int) -> int:
        return self._ccr[off // 4] if off < 4 * self.CHANNELS else 0

    def write(self, off: int, value: int) -> None:
        if off < 4 * self.CHANNELS:
            self._ccr[off // 4] = value & 0x01FF_FFFF
