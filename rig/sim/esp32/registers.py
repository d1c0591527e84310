"""The ESP32's address space as the ROM loader's READ_REG and WRITE_REG commands see it.

Only what esptool and espefuse read to identify and configure the chip has a meaning: the chip
magic in ROM, the eFuse controller, SPI1 (flash commands), and the clock registers esptool derives
the crystal frequency from. Every other address is plain storage, so a WRITE_REG followed by a
READ_REG returns what was written, as RAM or a configuration register would.
"""

from rig.sim.esp32 import spiflash
from rig.sim.esp32.efuse import CK8M_FREQ, Efuses

CHIP_DETECT_MAGIC_REG = 0x40001000
ESP32_MAGIC = 0x00F01D83  # esptool targets/esp32.py MAGIC_VALUE
APB_CTL_DATE = 0x3FF6607C  # bit 31 set on ECO3 silicon: with eFuse REV1/REV2 -> chip revision v3
UART_CLKDIV_REG = 0x3FF40014
RTCCALICFG1 = 0x3FF5F06C
GPIO_STRAP_REG = 0x3FF44038

XTAL_HZ = 40_000_000
ROM_BAUD = 115200
# The ROM auto-bauds the UART to the host's 115200 from the 40 MHz crystal; esptool multiplies the
# divider back by the baud rate to report "Crystal frequency: 40MHz".
UART_CLKDIV = XTAL_HZ // ROM_BAUD
# The ROM's RTC calibration of the 8 MHz oscillator against the crystal; esptool computes
# cali * 15625 * CK8M_FREQ / 40 to find the crystal frequency behind the stub's PLL clock.
RTC_CALI_VALUE = round(XTAL_HZ * 40 / (15625 * CK8M_FREQ))
STRAP_DOWNLOAD, STRAP_SPI_BOOT = 0x03, 0x13  # GPIO strapping as the ROM prints it: boot:0x..


class Registers:
    def __init__(self, efuses: Efuses, strap: int):
        self.efuses = efuses
        self._mem: dict[int, int] = {
            CHIP_DETECT_MAGIC_REG: ESP32_MAGIC,
            APB_CTL_DATE: 1 << 31,
            UART_CLKDIV_REG: UART_CLKDIV,
            RTCCALICFG1: RTC_CALI_VALUE << 7,
            GPIO_STRAP_REG: strap,
        }

    def read(self, addr: int) -> int:
        if self.efuses.contains(addr):
            return self.efuses.read(addr)
        return self._mem.get(addr, 0)

    def write(self, addr: int, value: int, mask: int = 0xFFFFFFFF) -> None:
        value = (self.read(addr) & ~mask | value & mask) & 0xFFFFFFFF
        if self.efuses.contains(addr):
            self.efuses.write(addr, value)
            return
        self._mem[addr] = value
        if addr == spiflash.CMD_REG and value & spiflash.SPI_USR:
            spiflash.execute(self._mem)
