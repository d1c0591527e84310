"""The RCC: reset flags, the oscillators' ready flags and the core clock SysTick counts.

Reset flags (RM0433 §8.7.39 RCC_RSR, RM0367 §7.3.21 RCC_CSR) collect every reset's cause until
the firmware clears them with RMVF; only a power-on starts them afresh. NRST pulses on every reset
of the part, so the pin flag comes with each cause. The clock tree is modelled as far as the core
clock goes: the H7 runs from HSI (64 MHz, divided by CR.HSIDIV) - PLLs are not modelled; the L0
from MSI (2.097 MHz, its reset range) until CFGR.SW selects HSI16 (16 MHz, /4 with HSI16DIVEN).
Oscillators are ready as soon as they are switched on (their start-up takes microseconds).
"""

from rig.sim.stm32.parts import Part, RccInterface


class Rcc:
    FLAGS_OFF: int  # the reset-flags register's offset
    RMVF: int
    FLAGS: dict[str, int]  # reset cause -> flag bits it sets (the pin flag included)

    def __init__(self) -> None:
        self._flags = 0
        self._regs: dict[int, int] = {}
        self._hz: int | None = None  # the core clock, worked out again after a register write

    def system_reset(self, cause: str) -> None:
        """A reset of the part: its cause's flags join the ones not yet cleared; the rest resets."""
        self._flags = self.FLAGS[cause] | (0 if cause == "power-on" else self._flags)
        self._regs = {}
        self._hz = None

    def read(self, off: int) -> int:
        if off == self.FLAGS_OFF:
            return self._flags
        return self._read(off)

    def write(self, off: int, value: int) -> None:
        if off == self.FLAGS_OFF:
            if value & self.RMVF:
                self._flags = 0
            return
        self._regs[off] = value
        self._hz = None

    def core_hz(self) -> int:
        if self._hz is None:
            self._hz = self._clock()
        return self._hz

    def _read(self, off: int) -> int:
        return self._regs.get(off, 0)

    def _clock(self) -> int:
        raise NotImplementedError


class H7Rcc(Rcc):
    FLAGS_OFF, RMVF = 0x0D0, 1 << 16
    # PORRSTF|BORRSTF|PINRSTF, IWDG1RSTF, SFTRSTF, PINRSTF, BORRSTF (each with PINRSTF)
    PIN = 1 << 22
    FLAGS = {"power-on": (1 << 23) | (1 << 21) | PIN, "pin": PIN, "watchdog": (1 << 26) | PIN,
             "software": (1 << 24) | PIN, "brownout": (1 << 21) | PIN}
    CR = 0x000
    CR_HSION, CR_HSIRDY = 1 << 0, 1 << 2

    def _read(self, off: int) -> int:
        if off == self.CR:
            cr = self._regs.get(off, 0x0000_0025)  # reset: HSION, HSIRDY, HSIDIV /1
            return cr | ((cr & self.CR_HSION) << 2)
        return super()._read(off)

    def _clock(self) -> int:
        hsidiv = (self._read(self.CR) >> 3) & 3
        return 64_000_000 >> hsidiv


class L0Rcc(Rcc):
    FLAGS_OFF, RMVF = 0x050, 1 << 23
    PIN = 1 << 26
    # The L0 has no brownout flag of its own: a brownout is a POR/PDR reset (PORRSTF).
    FLAGS = {"power-on": (1 << 27) | PIN, "pin": PIN, "watchdog": (1 << 29) | PIN,
             "software": (1 << 28) | PIN, "brownout": (1 << 27) | PIN}
    CR, CFGR = 0x00, 0x0C
    CR_HSI16ON, CR_HSI16RDYF, CR_HSI16DIVEN, CR_MSION, CR_MSIRDY = 1 << 0, 1 << 2, 1 << 3, 1 << 8, 1 << 9
    MSI_HZ = 2_097_000

    def _read(self, off: int) -> int:
        if off == self.CR:
            cr = self._regs.get(off, self.CR_MSION | self.CR_MSIRDY)
            return cr | ((cr & self.CR_HSI16ON) << 2) | ((cr & self.CR_MSION) << 1)
        if off == self.CFGR:
            cfgr = self._regs.get(off, 0)
            return (cfgr & ~0xC) | ((cfgr & 3) << 2)  # SWS follows SW
        return super()._read(off)

    def _clock(self) -> int:
        if self._read(self.CFGR) >> 2 & 3 == 1:  # SWS: HSI16
            return 16_000_000 // (4 if self._read(self.CR) & self.CR_HSI16DIVEN else 1)
        return self.MSI_HZ


def for_part(part: Part) -> Rcc:
    return {RccInterface.H7: H7Rcc, RccInterface.L0: L0Rcc}[part.rcc_interface]()
