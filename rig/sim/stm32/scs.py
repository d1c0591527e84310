"""The System Control Space as the emulated core's firmware sees it: SysTick, NVIC and SCB.

ARMv7-M / ARMv6-M Architecture Reference Manuals, "System Control Space":
- SysTick (0xE000E010): counts down from RVR at the core clock (CLKSOURCE=1, from the RCC) or
  at HCLK/8 (CLKSOURCE=0); CVR and COUNTFLAG follow the machine's clock. Each
  wrap with TICKINT set pends exception 15. Wraps the core could not take yet (the host was slow)
  are taken one after another, so a millisecond counter kept by the handler follows the wall
  clock; more than MAX_BEHIND of them are dropped, as the pending bit of silicon would.
- NVIC: ISER/ICER/ISPR/ICPR and priority registers as storage; an external interrupt is taken
  when its line is up (the peripheral says so) and it is enabled.
- SCB: CPUID, ICSR, VTOR, AIRCR (SYSRESETREQ resets the part), SCR, CCR, SHPR, SHCSR, the fault
  status registers, CPACR.
Priorities are not compared: an exception is taken only from thread mode with PRIMASK clear, so
handlers never nest (the reference firmware's do not need to).
"""

from collections.abc import Callable

SYST_CSR, SYST_RVR, SYST_CVR, SYST_CALIB = 0x010, 0x014, 0x018, 0x01C
CSR_ENABLE, CSR_TICKINT, CSR_CLKSOURCE, CSR_COUNTFLAG = 1 << 0, 1 << 1, 1 << 2, 1 << 16
NVIC_ISER, NVIC_ICER, NVIC_ISPR, NVIC_ICPR = 0x100, 0x180, 0x200, 0x280
CPUID, ICSR, VTOR, AIRCR = 0xD00, 0xD04, 0xD08, 0xD0C
AIRCR_VECTKEY = 0x05FA << 16
AIRCR_SYSRESETREQ = 1 << 2
SYSTICK = 15
MAX_BEHIND = 100


class Scs:
    def __init__(self, cpuid: int, now: Callable[[], float], core_hz: Callable[[], int],
                 system_reset: Callable[[str], None]):
        self._cpuid = cpuid
        self._now = now
        self._core_hz = core_hz
        self._system_reset = system_reset
        self.reset()

    def reset(self) -> None:
        self._regs: dict[int, int] = {}
        self.vtor = 0
        self._csr = 0
        self._rvr = 0
        self._t0 = 0.0  # clock time the counter was last loaded
        self._taken = 0  # wraps since _t0 already taken as exceptions (or dropped)
        self._seen = 0  # wraps since _t0 already reported by COUNTFLAG
        self._enabled = [0] * 8  # NVIC_ISER words
        self._pended = [0] * 8  # NVIC_ISPR words (software-pended)

    # -- SysTick
    def _period(self) -> float:
        hz = self._core_hz() if self._csr & CSR_CLKSOURCE else self._core_hz() / 8
        return (self._rvr + 1) / hz

    def _wraps(self) -> int:
        if not self._csr & CSR_ENABLE or self._rvr == 0:
            return 0
        return int((self._now() - self._t0) / self._period())

    def _reload(self) -> None:
        self._t0 = self._now()
        self._taken = self._seen = 0

    def systick_deadline(self) -> float | None:
        """Clock time of the next SysTick exception, None if none will come."""
        if self._csr & (CSR_ENABLE | CSR_TICKINT) != CSR_ENABLE | CSR_TICKINT or self._rvr == 0:
            return None
        return self._t0 + (self._taken + 1) * self._period()

    # -- exceptions
    def pending(self, line: Callable[[int], bool]) -> int | None:
        """The exception to take now, if any; `line(irq)` says whether a peripheral's line is up."""
        if self._csr & CSR_TICKINT and self._wraps() > self._taken:
            return SYSTICK
        for word, enabled in enumerate(self._enabled):
            for bit in range(32) if enabled else ():
                irq = 32 * word + bit
                if enabled >> bit & 1 and (self._pended[word] >> bit & 1 or line(irq)):
                    return 16 + irq
        return None

    def taken(self, exception: int) -> None:
        if exception == SYSTICK:
            self._taken = max(self._taken + 1, self._wraps() - MAX_BEHIND)
        elif exception >= 16:
            word, bit = divmod(exception - 16, 32)
            self._pended[word] &= ~(1 << bit)

    # -- registers (offsets from 0xE000E000)
    def read(self, off: int) -> int:
        if off == SYST_CSR:
            wraps = self._wraps()
            flag = CSR_COUNTFLAG if wraps > self._seen else 0
            self._seen = wraps
            return self._csr | flag
        if off == SYST_RVR:
            return self._rvr
        if off == SYST_CVR:
            if not self._csr & CSR_ENABLE:
                return 0
            elapsed = (self._now() - self._t0) / self._period() % 1.0
            return int(self._rvr * (1.0 - elapsed)) & 0xFF_FFFF
        if NVIC_ISER <= off < NVIC_ISER + 32 or NVIC_ICER <= off < NVIC_ICER + 32:
            return self._enabled[(off & 0x1F) // 4]
        if NVIC_ISPR <= off < NVIC_ISPR + 32 or NVIC_ICPR <= off < NVIC_ICPR + 32:
            return self._pended[(off & 0x1F) // 4]
        if off == CPUID:
            return self._cpuid
        if off == VTOR:
            return self.vtor
        if off == AIRCR:
            return 0xFA05_0000 | (self._regs.get(off, 0) & 0x700)
        return self._regs.get(off, 0)

    def write(self, off: int, value: int) -> None:
        if off == SYST_CSR:
            was = self._csr & CSR_ENABLE
            self._csr = value & (CSR_ENABLE | CSR_TICKINT | CSR_CLKSOURCE)
            if self._csr & CSR_ENABLE and not was:
                self._reload()
        elif off == SYST_RVR:
            self._rvr = value & 0xFF_FFFF
        elif off == SYST_CVR:
            self._reload()  # any write clears the counter and COUNTFLAG; it reloads on the next tick
        elif NVIC_ISER <= off < NVIC_ISER + 32:
            self._enabled[(off & 0x1F) // 4] |= value
        elif NVIC_ICER <= off < NVIC_ICER + 32:
            self._enabled[(off & 0x1F) // 4] &= ~value
        elif NVIC_ISPR <= off < NVIC_ISPR + 32:
            self._pended[(off & 0x1F) // 4] |= value
        elif NVIC_ICPR <= off < NVIC_ICPR + 32:
            self._pended[(off & 0x1F) // 4] &= ~value
        elif off == VTOR:
            self.vtor = value & 0xFFFF_FF80
        elif off == AIRCR:
            if value & 0xFFFF_0000 == AIRCR_VECTKEY and value & AIRCR_SYSRESETREQ:
                self._system_reset("software")
            elif value & 0xFFFF_0000 == AIRCR_VECTKEY:
                self._regs[off] = value & 0x700
        else:
            self._regs[off] = value
