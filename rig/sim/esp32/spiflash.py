"""The SPI NOR part on the virtual ESP32 and the SPI1 "user command" controller that reaches it.

esptool reads the flash ID (RDID), SFDP and status registers by programming SPI1's user-command
registers through WRITE_REG, setting SPI_USR in SPI_CMD_REG and polling it clear, then reading
SPI_W0 (esptool loader.py run_spiflash_command). The part is a Winbond W25Q32JV, 4 MiB: JEDEC
manufacturer 0xEF, memory type 0x40, capacity 0x16 (2^22 bytes), which esptool maps to "4MB".
"""

from rig.image.layouts import ESP32

SPI1_BASE = 0x3FF42000
CMD_REG = SPI1_BASE + 0x00
ADDR_REG = SPI1_BASE + 0x04
USR2_REG = SPI1_BASE + 0x24
MISO_DLEN_REG = SPI1_BASE + 0x2C
W0_REG = SPI1_BASE + 0x80
SPI_USR = 1 << 18  # SPI_CMD_REG: start the user command; hardware clears it when done

JEDEC_ID = bytes([0xEF, 0x40, 0x16])  # sent in this order on MISO: manufacturer, type, capacity
assert 1 << JEDEC_ID[2] == ESP32.size, "the JEDEC capacity byte must match the layout's flash size"

RDID, RDSFDP = 0x9F, 0x5A
# The SFDP header (JESD216): signature, revision 1.5, one parameter header (basic flash table).
# Only the header is modelled; esptool reads the signature to confirm a flash chip answers.
SFDP = b"SFDP" + bytes([0x05, 0x01, 0x00, 0xFF, 0x00, 0x05, 0x01, 0x10, 0x80, 0x00, 0x00, 0xFF])


def execute(regs: dict[int, int]) -> None:
    """Run the user command set up in `regs` (address -> value of SPI1's registers)."""
    command = regs.get(USR2_REG, 0) & 0xFF
    read_bits = regs.get(MISO_DLEN_REG, 0) + 1
    if command == RDID:
        miso = JEDEC_ID
    elif command == RDSFDP:
        addr = regs.get(ADDR_REG, 0) >> 8  # esptool puts the 24-bit address in the top bits
        miso = SFDP[addr : addr + 4].ljust(4, b"\xff")
    else:
        # Status registers read 0 (no write protection, not busy); resets and write-enables
        # change nothing a host can observe here.
        miso = b"\x00" * 4
    value = int.from_bytes(miso.ljust(4, b"\x00")[:4], "little")
    regs[W0_REG] = value & ((1 << min(read_bits, 32)) - 1)
    regs[CMD_REG] = regs.get(CMD_REG, 0) & ~SPI_USR
