"""How long the virtual boards' flash, console UART and SWD link take: nothing, or the datasheets' typical times.

A lab chooses its model when it starts (`rig lab up --timing none|datasheet`). With "none" (the
default) every operation completes as fast as Python runs it and nothing here sleeps, so tests keep
their speed. With "datasheet" the board's thread doing the work (its firmware thread, the RFC2217
reader that feeds its UART, the SWD server's client thread) sleeps for the part's typical time;
time.sleep releases the GIL, so the boards of one daemon wait side by side, as real boards do.

Figures (typical, not maximum; an operation takes its whole time inside the command that starts it):
- ESP32 modules' SPI NOR, Winbond W25Q32JV datasheet, "AC Electrical Characteristics": 4 KiB sector
  erase tSE 45 ms, 64 KiB block erase tBE2 150 ms, chip erase tCE 10 s, page program tPP 0.4 ms per
  256-byte page (a partial page is one page program). The ROM loader and esptool's flasher stub
  erase in 64 KiB blocks where a whole aligned block is to go, else in 4 KiB sectors
  (rig.sim.esp32.flashwriter); the real stub erases while the UART still receives, which this
  model does not overlap, so an ESP32 download here is a little slower than on the bench.
- STM32H743, datasheet DS12110, "Flash memory programming", program/erase parallelism x64 (PSIZE=3,
  which pyocd's STM32H743 flash algorithm and its mass erase both select): 256-bit flash word
  program t_prog 100 us, 128 KiB sector erase t_ERASE128KB 1 s, mass erase t_ME 5 s. A bank
  erase is charged t_ME as well (the datasheet gives no separate bank figure).
- STM32L073, datasheet DS10685, "Flash memory and data EEPROM characteristics": t_prog 3.28 ms for
  a page erase, a word program and a half-page (64-byte) program alike; pyocd's L0 algorithm
  programs half-pages, lone words cost a word program each. The datasheet gives no time for the
  mass erase an RDP 1 -> 0 regression performs: it is charged one t_prog (an assumption: the NVM
  erases the array in one high-voltage step, as it erases a page).
- Console UART: 10 bit times per byte (start, 8 data bits, stop: the 8N1 framing the racks and
  esptool use) at the baud rate the RFC2217 client last set - esptool's change_baud reaches the
  board that way - or 115200 until one does; both directions.
- SWD link: an ST-LINK/V2 moves about 100-300 KiB/s over SWD (USB full speed and its firmware limit
  it, not the SWD clock); the model charges the bytes every debug request carries at 200 KiB/s.
  USB round trips per request are not modelled.
What is not modelled: flash reads (SPI NOR and AXI reads are orders of magnitude faster than the
links that carry them), boot times, the ESP32 stub's MD5 computation, eFuse burning.
"""

import threading
import time
from dataclasses import dataclass

MODELS = ("none", "datasheet")
DEFAULT_BAUD = 115200
BITS_PER_BYTE = 10  # 8N1: start bit, 8 data bits, stop bit
SWD_BYTES_PER_SECOND = 200 * 1024  # ST-LINK/V2: 100-300 KiB/s
KINDS = ("erase", "program", "uart", "swd")

KIB, MIB = 1024, 1024 * 1024


@dataclass(frozen=True)
class FlashTiming:
    """A flash part's typical erase and program times; sizes in bytes, times in seconds."""

    source: str
    sector: int  # the smallest erase
    sector_erase: float
    block: int  # a larger erase command for whole aligned blocks (SPI NOR 64 KiB); 0: none
    block_erase: float
    mass: tuple[int, ...]  # lengths one whole-array command erases (chip, bank, mass erase)
    mass_erase: float
    page: int  # the largest program command (NOR page, H7 flash word, L0 half-page)
    page_program: float
    word: int  # what a program outside whole pages costs per unit touched
    word_program: float

    def erase_seconds(self, offset: int, length: int) -> float:
        if length in self.mass and offset % length == 0:
            return self.mass_erase
        blocks = _whole_units(offset, offset + length, self.block) if self.block else 0
        sectors = (length - blocks * self.block) // self.sector
        return blocks * self.block_erase + sectors * self.sector_erase

    def program_seconds(self, offset: int, length: int) -> float:
        end = offset + length
        pages = _whole_units(offset, end, self.page)
        if not pages:
            return _units_touched(offset, end, self.word) * self.word_program
        first = -(-offset // self.page) * self.page
        last = first + pages * self.page
        words = _units_touched(offset, first, self.word) + _units_touched(last, end, self.word)
        return pages * self.page_program + words * self.word_program


def _whole_units(start: int, end: int, unit: int) -> int:
    """How many aligned `unit`-byte units lie wholly inside [start, end)."""
    return max(0, end // unit - -(-start // unit))


def _units_touched(start: int, end: int, unit: int) -> int:
    return 0 if end <= start else -(-end // unit) - start // unit


W25Q32JV = FlashTiming(
    source="Winbond W25Q32JV datasheet, AC Electrical Characteristics (typical)",
    sector=4 * KIB, sector_erase=0.045, block=64 * KIB, block_erase=0.150,
    mass=(4 * MIB,), mass_erase=10.0,
    page=256, page_program=0.0004, word=256, word_program=0.0004,
)
STM32H743 = FlashTiming(
    source="ST DS12110 (STM32H743), Flash memory programming, parallelism x64 (typical)",
    sector=128 * KIB, sector_erase=1.0, block=0, block_erase=0.0,
    mass=(1 * MIB, 2 * MIB), mass_erase=5.0,
    page=32, page_program=0.0001, word=32, word_program=0.0001,
)
STM32L073 = FlashTiming(
    source="ST DS10685 (STM32L073), Flash memory and data EEPROM characteristics (typical)",
    sector=128, sector_erase=0.00328, block=0, block_erase=0.0,
    mass=(192 * KIB,), mass_erase=0.00328,
    page=64, page_program=0.00328, word=4, word_program=0.00328,
)
PARTS = {"esp32": W25Q32JV, "stm32h7": STM32H743, "stm32l0": STM32L073}


class Timing:
    """One board's timing: what its flash, UART and SWD link cost, slept in the caller's thread and
    counted per kind (`charged`, seconds; the lab's control endpoint reports it)."""

    def __init__(self, model: str = "none", variant: str = "esp32"):
        if model not in MODELS:
            raise ValueError(f"timing model {model!r}: use one of {', '.join(MODELS)}")
        self.model = model
        self.flash_part: FlashTiming | None = PARTS[variant] if model == "datasheet" else None
        self.charged = dict.fromkeys(KINDS, 0.0)
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.flash_part is not None

    def erase(self, offset: int, length: int) -> None:
        if self.flash_part is not None:
            self._spend("erase", self.flash_part.erase_seconds(offset, length))

    def program(self, offset: int, length: int) -> None:
        if self.flash_part is not None:
            self._spend("program", self.flash_part.program_seconds(offset, length))

    def uart(self, nbytes: int, baud: int) -> None:
        if self.flash_part is not None and nbytes:
            self._spend("uart", nbytes * BITS_PER_BYTE / baud)

    def swd(self, nbytes: int) -> None:
        if self.flash_part is not None and nbytes:
            self._spend("swd", nbytes / SWD_BYTES_PER_SECOND)

    def _spend(self, kind: str, seconds: float) -> None:
        with self._lock:
            self.charged[kind] += seconds
        _here.slept = slept_in_this_thread() + seconds
        time.sleep(seconds)


_here = threading.local()


def slept_in_this_thread() -> float:
    """Seconds the timing models have slept in the calling thread so far: an emulated core's
    thread tells its flash and UART time from the host's slowness with it (rig.sim.stm32.machine)."""
    return getattr(_here, "slept", 0.0)
