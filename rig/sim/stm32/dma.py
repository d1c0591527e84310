"""DMA1 at register level, as far as the console's receiver uses it: peripheral-to-memory
transfers the USART asks for (CR3.DMAR), one per received byte.

Two register layouts, each a Layout record below (one controller, Dma, reads either):
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
from dataclasses import dataclass

# Flags, in each part's own bit order within a channel's/stream's group.
TCIF, HTIF, TEIF = "tc", "ht", "te"


@dataclass(frozen=True)
class Layout:
    """One part's DMA1 register layout, as data (esptool's way with chips): one controller reads it."""

    channels: int  # channels or streams
    first: int  # offset of channel/stream 0's register block
    stride: int  # bytes from one block to the next
    registers: tuple[tuple[str, int, int], ...]  # a block's registers in order: (name, write mask, reset value)
    status: tuple[int, ...]  # flag status registers (ISR; LISR, HISR), each holding len(groups) channels
    clear: tuple[int, ...]  # their flag clear registers, in the same order (IFCR; LIFCR, HIFCR)
    groups: tuple[int, ...]  # where each channel's flag group starts within a status/clear register
    bits: dict[str, int]  # each flag's bit within its group
    global_bit: int | None  # a group's "any flag" bit (the L0's GIFx; clearing it clears all), if any
    # CR bits
    tcie: int
    htie: int
    teie: int
    circ: int
    minc: int
    dir_mask: int
    dir_p2m: int
    msize_shift: int
    cselr: int | None = None  # offset of CSELR, which routes requests to channels (the L0; the H7: DMAMUX1)


FULL = 0xFFFF_FFFF

# STM32L0 DMA1 (RM0367 §11.4): channels 1-7 at index 0-6, 20 bytes apart; CSELR at 0xA8.
CHANNEL = Layout(
    channels=7, first=0x08, stride=20,
    registers=(("cr", 0x7FFF, 0), ("ndtr", 0xFFFF, 0), ("par", FULL, 0), ("mar", FULL, 0)),
    status=(0x00,), clear=(0x04,), groups=tuple(4 * n for n in range(7)),
    bits={TCIF: 1, HTIF: 2, TEIF: 3}, global_bit=0,
    tcie=1 << 1, htie=1 << 2, teie=1 << 3, circ=1 << 5, minc=1 << 7,
    dir_mask=1 << 4, dir_p2m=0,  # DIR=0: read from the peripheral
    msize_shift=10, cselr=0xA8,
)

# STM32H7 DMA1 (RM0433 §15.5): streams 0-7, 24 bytes apart; requests come through DMAMUX1.
STREAM = Layout(
    channels=8, first=0x10, stride=24,
    registers=(("cr", 0x01FF_FFFF, 0), ("ndtr", 0xFFFF, 0), ("par", FULL, 0), ("mar", FULL, 0),
               ("m1ar", FULL, 0), ("fcr", 0xBF, 0x21)),  # SxFCR resets to direct mode
    status=(0x00, 0x04), clear=(0x08, 0x0C), groups=(0, 6, 16, 22),
    bits={TEIF: 3, HTIF: 4, TCIF: 5}, global_bit=None,
    tcie=1 << 4, htie=1 << 3, teie=1 << 2, circ=1 << 8, minc=1 << 10,
    dir_mask=3 << 6, dir_p2m=0,
    msize_shift=13,
)


class _Channel:
    """One channel or stream's transfer state: its registers by their layout's names (a transfer uses
    cr, ndtr and mar; the others are only stored), NDTR as programmed, and its flags."""

    cr: int
    ndtr: int
    mar: int

    def __init__(self, layout: Layout) -> None:
        for name, _, reset in layout.registers:
            setattr(self, name, reset)
        self.reload = 0  # NDTR as programmed (circular mode reloads it)
        self.flags: set[str] = set()


class Dma:
    """DMA1 of either layout; `mux` is the DMAMUX1 in front of a stream DMA."""

    EN = 1 << 0

    def __init__(self, layout: Layout, mem_write: Callable[[int, bytes], None],
                 reachable: Callable[[int, int], bool], irqs: tuple[int, ...], mux: "Dmamux | None" = None):
        self.layout = layout
        self.mux = mux
        self._mem_write = mem_write
        self._reachable = reachable
        self._irqs = irqs  # NVIC line per channel/stream
        self.reset()

    def reset(self) -> None:
        self.ch = [_Channel(self.layout) for _ in range(self.layout.channels)]
        self._cselr = 0

    def serving(self, requests: tuple) -> int | None:
        """The enabled peripheral-to-memory channel/stream one of `requests` is routed to, if any."""
        lay = self.layout
        for n, ch in enumerate(self.ch):
            if ch.cr & self.EN and ch.cr & lay.dir_mask == lay.dir_p2m and self._routes(n) in requests:
                return n
        return None

    def _routes(self, n: int):
        if self.mux is not None:
            return self.mux.request(n)
        return n + 1, self._cselr >> 4 * n & 0xF  # (channel number, its CxS request)

    def transfer(self, n: int, data: bytes) -> int:
        """Received bytes, one request each, on channel/stream n: how many it took (it stops at the
        end of a non-circular transfer or at an error)."""
        lay, ch = self.layout, self.ch[n]
        width = 1 << (ch.cr >> lay.msize_shift & 3)
        taken = 0
        while taken < len(data) and ch.cr & self.EN and ch.ndtr:
            # As many bytes as fit before NDTR's next landmark (half, end): one memory write.
            half = ch.reload // 2
            stop = ch.ndtr - half if ch.ndtr > half else ch.ndtr
            run = data[taken : taken + min(stop, len(data) - taken)]
            done = ch.reload - ch.ndtr  # transfers since the (re)load
            if ch.cr & lay.minc:
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
                if ch.cr & lay.circ:
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
        lay = self.layout
        return bool((TCIF in ch.flags and ch.cr & lay.tcie) or (HTIF in ch.flags and ch.cr & lay.htie)
                    or (TEIF in ch.flags and ch.cr & lay.teie))

    def read(self, off: int) -> int:
        lay = self.layout
        if off in lay.status:
            value = 0
            for ch, shift in self._grouped(lay.status.index(off)):
                group = sum(1 << lay.bits[f] for f in ch.flags)
                if group and lay.global_bit is not None:
                    group |= 1 << lay.global_bit
                value |= group << shift
            return value
        if off == lay.cselr:
            return self._cselr
        ch, (name, _, _) = self._register(off)
        return 0 if ch is None else getattr(ch, name)

    def write(self, off: int, value: int) -> None:
        lay = self.layout
        if off in lay.clear:
            anything = 1 << lay.global_bit if lay.global_bit is not None else 0
            for ch, shift in self._grouped(lay.clear.index(off)):
                group = value >> shift
                ch.flags -= {f for f, bit in lay.bits.items() if group & anything or group >> bit & 1}
            return
        if off == lay.cselr:
            self._cselr = value & 0x0FFF_FFFF
            return
        ch, (name, mask, _) = self._register(off)
        if ch is None:
            return
        if name == "cr":
            value &= mask
            if value & self.EN and not ch.cr & self.EN:
                ch.reload = ch.ndtr  # the count programmed while disabled
            ch.cr = value
        elif name == "ndtr":
            if not ch.cr & self.EN:  # read-only while enabled
                ch.ndtr = ch.reload = value & mask
        else:
            setattr(ch, name, value & mask)

    def _grouped(self, register: int):
        """(channel, its group's shift) for each channel whose flags status/clear register `register` holds."""
        per = len(self.layout.groups)
        return zip(self.ch[register * per : (register + 1) * per], self.layout.groups, strict=True)

    def _register(self, off: int) -> tuple[_Channel | None, tuple[str, int, int]]:
        """The channel/stream and register (name, write mask, reset value) at `off`; None: no such register."""
        lay = self.layout
        if lay.first <= off < lay.first + lay.stride * lay.channels:
            n, at = divmod(off - lay.first, lay.stride)
            if at // 4 < len(lay.registers):
                return self.ch[n], lay.registers[at // 4]
        return None, ("", 0, 0)


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
