"""The SW-DP and the one MEM-AP (AP0, the AHB-AP) of the virtual STM32, at register level.

pyocd reaches them through the probe API (read_dp/write_dp/read_ap/write_ap): it powers up the
debug domain through CTRL/STAT, finds AP0 by its IDR, the ROM table through BASE, and pyocd's
MinimalMemAP (used by the stm32h743xx target before discovery) goes through CSW/TAR/DRW. The
probe manages AP and DP bank selection itself, as an ST-LINK does, so `addr` carries the APSEL
in bits 31:24 and the register offset (bank included) in bits 7:0.
"""

from rig.sim.stm32.chip import Chip

DP_IDR_ABORT, DP_CTRL_STAT = 0x0, 0x4  # SELECT and RDBUFF need no model: see write_dp
DP_TARGETID = 0x24  # bank 2 of register 0x4 (DPv2)
CSYSPWRUPREQ, CDBGPWRUPREQ = 1 << 30, 1 << 28
AP_CSW, AP_TAR, AP_DRW, AP_BD0, AP_CFG, AP_BASE, AP_IDR = 0x00, 0x04, 0x0C, 0x10, 0xF4, 0xF8, 0xFC
CSW_DEVICEEN = 1 << 6
CSW_SIZES = {0: 1, 1: 2, 2: 4}
CSW_ADDRINC_SINGLE = 1 << 4
ROM_BASE = 0xE00F_F003  # ROM table address, format 32-bit, entry present


class DebugPort:
    def __init__(self, chip: Chip):
        self.chip = chip
        self._ctrl = 0
        self._csw = 0x0300_0002  # word size, no increment (reset value class of an AHB-AP)
        self._tar = 0

    def read_dp(self, addr: int) -> int:
        if addr == DP_IDR_ABORT:
            return self.chip.part.dpidr
        if addr == DP_CTRL_STAT:
            # Power-up acknowledges follow their requests immediately.
            return self._ctrl | (self._ctrl & (CSYSPWRUPREQ | CDBGPWRUPREQ)) << 1
        if addr == DP_TARGETID:
            return (self.chip.part.dbgmcu_idcode & 0xFFF) << 16 | 0x0041  # part number, STMicro
        return 0

    def write_dp(self, addr: int, value: int) -> None:
        if addr == DP_CTRL_STAT:
            self._ctrl = value & 0xF000_0F00
        # ABORT and SELECT need no state: transfers never stick, selection is probe-managed.

    def read_ap(self, addr: int) -> int:
        apsel, reg = addr >> 24, addr & 0xFF
        if apsel != 0:
            return 0  # no AP there: its IDR reads zero and discovery stops
        if reg == AP_IDR:
            return self.chip.part.ap_idr
        if reg == AP_BASE:
            return ROM_BASE
        if reg == AP_CFG:
            return 0
        if reg == AP_CSW:
            return self._csw | CSW_DEVICEEN
        if reg == AP_TAR:
            return self._tar
        if reg == AP_DRW:
            size = CSW_SIZES.get(self._csw & 7, 4)
            value = self.chip.read(self._tar, size) << ((self._tar & 3) * 8)
            self._advance(size)
            return value & 0xFFFF_FFFF
        if AP_BD0 <= reg < AP_BD0 + 16:
            return self.chip.read((self._tar & ~0xF) + reg - AP_BD0, 4)
        return 0

    def write_ap(self, addr: int, value: int) -> None:
        apsel, reg = addr >> 24, addr & 0xFF
        if apsel != 0:
            return
        if reg == AP_CSW:
            self._csw = value
        elif reg == AP_TAR:
            self._tar = value
        elif reg == AP_DRW:
            size = CSW_SIZES.get(self._csw & 7, 4)
            self.chip.write(self._tar, (value >> ((self._tar & 3) * 8)) & ((1 << 8 * size) - 1), size)
            self._advance(size)
        elif AP_BD0 <= reg < AP_BD0 + 16:
            self.chip.write((self._tar & ~0xF) + reg - AP_BD0, value, 4)

    def _advance(self, size: int) -> None:
        if self._csw & 0x30 == CSW_ADDRINC_SINGLE:
            self._tar = (self._tar + size) & 0xFFFF_FFFF
