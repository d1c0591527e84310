"""The ESP32's eFuse controller, persisted per board in `efuse.bin` of its state directory.

The cells and their one-time-programmable rules are espefuse's own virtual controller (the one
behind `espefuse --virt`): bits only go 0 -> 1, write-protect bits mask later burns, read-protect
bits blank a block's read registers. We reuse it rather than re-implement it, so the virtual chip
and `espefuse --virt --path-efuse-file <state_dir>/efuse.bin` agree bit for bit; the file format
is espefuse's, so that command reads and burns this board's eFuses while the board is off.

What is ours is the controller's command interface as the silicon has it (ESP32 TRM, eFuse
Controller): software fills the BLOCKn write registers, sets EFUSE_CONF to the program op code and
EFUSE_CMD to PGM, which burns them; then the read op code and EFUSE_CMD READ reloads the read
registers, applying read protection. espefuse over the serial port drives exactly that sequence
through the ROM loader's WRITE_REG/READ_REG, and the bootloader model burns the anti-rollback
secure version the same way.
"""

import functools
import hashlib
from pathlib import Path

from espefuse.efuse.emulate_efuse_controller_base import EmulateEfuseControllerBase
from espefuse.efuse.esp32.emulate_efuse_controller import EmulateEfuseController
from espefuse.efuse.esp32.mem_definition import EfuseDefineBlocks, EfuseDefineFields, EfuseDefineRegisters

REGS = EfuseDefineRegisters
BASE = REGS.DR_REG_EFUSE_BASE
END = BASE + REGS.EFUSE_MEM_SIZE  # first address past the controller's registers
FILE_NAME = "efuse.bin"
# What the flash encryption engine reads of BLOCK1 over its private path: kept beside efuse.bin,
# since the controller's read registers show zeros once BLOCK1 is read-protected.
KEY_FILE_NAME = "efuse-block1-engine.bin"

BLOCK0_RD = BASE + 0x000
BLOCK1_RD = BASE + 0x038  # flash encryption key block
BLOCK2_RD = BASE + 0x058  # secure boot key block: the Secure Boot V2 public key digest
BLOCK3_RD = BASE + 0x078
BLOCK3_WR = BASE + 0x0D8
SECURE_VERSION_WORD = 4  # ESP-IDF esp_efuse_table.csv (esp32): SECURE_VERSION = BLK3 bits 128..159

UART_DOWNLOAD_DIS = (0, 1 << 27)  # (BLOCK0 word, bit): the ROM refuses download mode (ECO3 and later)
ABS_DONE_1 = (6, 1 << 5)  # Secure Boot V2 enabled

ESPRESSIF_OUI = bytes.fromhex("240ac4")
# A fresh ESP32-D0WD-V3, revision v3.1, as it leaves the factory (ESP-IDF esp_efuse_table.csv bits).
PKG_D0WD = 1  # CHIP_VER_PKG, BLOCK0 word 3 bits 9..11
CHIP_VER_REV1 = 1 << 15  # BLOCK0 word 3
CHIP_VER_REV2 = 1 << 20  # BLOCK0 word 5
WAFER_MINOR_1 = 1 << 24  # BLOCK0 word 5 bits 24..25
CK8M_FREQ = 0x58  # BLOCK0 word 4 bits 0..7: the 8 MHz oscillator's calibration the ROM scales with


def mac_crc8(mac: bytes) -> int:
    """esp_crc8() of the ROM: CRC-8, reflected polynomial 0x8C, initial value 0 (guards MAC_FACTORY)."""
    crc = 0
    for byte in mac:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8C if crc & 1 else crc >> 1
    return crc


def factory_mac(board_id: str) -> bytes:
    """A stable, unique-per-board MAC in Espressif's OUI, so read-mac answers the same every time."""
    return ESPRESSIF_OUI + hashlib.sha256(board_id.encode()).digest()[:3]


@functools.cache
def _fields() -> EfuseDefineFields:
    return EfuseDefineFields(None)


class _Controller(EmulateEfuseController):
    """espefuse's cells with the silicon's command semantics: PGM burns only with the program op
    code in EFUSE_CONF; READ reloads (applying read protection) only with the read op code."""

    def __init__(self, efuse_file: str):
        # As EmulateEfuseController.__init__, but the eFuse field table (a YAML file that takes
        # ~50 ms to parse) is parsed once per process: every boot of every board opens its eFuses.
        self.Blocks = EfuseDefineBlocks
        self.Fields = _fields()
        self.REGS = EfuseDefineRegisters
        EmulateEfuseControllerBase.__init__(self, efuse_file)

    def handle_writing_event(self, addr: int, value: int) -> None:
        if addr == REGS.EFUSE_REG_CMD and value:
            conf = self.read_reg(REGS.EFUSE_REG_CONF)
            if value & REGS.EFUSE_CMD_WRITE and conf == REGS.EFUSE_CONF_WRITE:
                self.copy_blocks_wr_regs_to_rd_regs()
                self._engine_key_burnt()
            elif value & REGS.EFUSE_CMD_READ and conf == REGS.EFUSE_CONF_READ:
                self.clean_blocks_wr_regs()
                self.check_rd_protection_area()
            super().write_reg(addr, 0)  # the command bits self-clear when the operation is done
        self.save_to_file()


    def _engine_key_burnt(self) -> None:
        """After a burn, before read protection blanks the read registers: the bits of BLOCK1 the
        burn set reach the flash encryption engine too (OR-ed, as the cells only go 0 -> 1)."""
        path = Path(self.efuse_file).with_name(KEY_FILE_NAME)
        old = path.read_bytes() if path.exists() else bytes(32)
        now = b"".join(self.read_reg(BLOCK1_RD + 4 * i).to_bytes(4, "little") for i in range(8))
        if any(now):
            path.write_bytes(bytes(a | b for a, b in zip(old, now, strict=True)))


class Efuses:
    """The eFuse controller's register window (0x3FF5A000..) of one board."""

    def __init__(self, state_dir: Path, board_id: str):
        path = Path(state_dir) / FILE_NAME
        fresh = not path.exists() or path.stat().st_size == 0
        self._ctl = _Controller(str(path))
        if fresh:
            self._factory_program(factory_mac(board_id))

    def _factory_program(self, mac: bytes) -> None:
        word1 = int.from_bytes(mac[2:6], "big")
        word2 = mac[1] | mac[0] << 8 | mac_crc8(mac) << 16
        for word, value in ((1, word1), (2, word2), (3, PKG_D0WD << 9 | CHIP_VER_REV1),
                            (4, CK8M_FREQ), (5, CHIP_VER_REV2 | WAFER_MINOR_1)):
            self._ctl.direct_write_efuse(word, value, block=0)
        self._ctl.save_to_file()

    @staticmethod
    def contains(addr: int) -> bool:
        return BASE <= addr < END

    def read(self, addr: int) -> int:
        return self._ctl.read_reg(addr)

    def write(self, addr: int, value: int) -> None:
        self._ctl.write_reg(addr, value & 0xFFFFFFFF)

    # -- what the ROM and the bootloader read and burn
    def _flag(self, word_bit: tuple[int, int]) -> bool:
        word, bit = word_bit
        return bool(self.read(BLOCK0_RD + 4 * word) & bit)

    def download_disabled(self) -> bool:
        return self._flag(UART_DOWNLOAD_DIS)

    def secure_boot_v2(self) -> bool:
        return self._flag(ABS_DONE_1)

    def secure_boot_key_digest(self) -> bytes:
        """BLOCK2 as the 32 bytes `espefuse burn-key-digest` burned (word 0 holds bytes 0..3)."""
        return b"".join(self.read(BLOCK2_RD + 4 * i).to_bytes(4, "little") for i in range(8))

    def flash_encryption_enabled(self) -> bool:
        """An odd number of FLASH_CRYPT_CNT bits burnt: the cache decrypts (rig.sim.esp32.flash_crypt)."""
        return bin(self._ctl.read_field("FLASH_CRYPT_CNT", bitstring=False)).count("1") % 2 == 1

    def flash_crypt_config(self) -> int:
        return self._ctl.read_field("FLASH_CRYPT_CONFIG", bitstring=False)

    def flash_encryption_key(self) -> bytes:
        """The key as `espsecure encrypt-flash-data --keyfile` takes it: espefuse burns BLOCK1 with
        the key file's bytes reversed, and the engine reads the block the other way round."""
        path = Path(self._ctl.efuse_file).with_name(KEY_FILE_NAME)
        return (path.read_bytes() if path.exists() else bytes(32))[::-1]

    def secure_version(self) -> int:
        """Anti-rollback secure version: the number of SECURE_VERSION bits burnt (DESIGN §3)."""
        return bin(self.read(BLOCK3_RD + 4 * SECURE_VERSION_WORD)).count("1")

    def burn_secure_version(self, version: int | None) -> None:
        """esp_efuse_update_secure_version(): burn bits until the popcount reaches `version`,
        through the controller's PGM/READ commands, so write protection of BLOCK3 holds. None (the
        app has no description) burns nothing."""
        if version is None or not 0 < version <= 32 or version <= self.secure_version():
            return
        self.write(BLOCK3_WR + 4 * SECURE_VERSION_WORD, (1 << version) - 1)
        self.write(REGS.EFUSE_REG_CONF, REGS.EFUSE_CONF_WRITE)
        self.write(REGS.EFUSE_REG_CMD, REGS.EFUSE_CMD_WRITE)
        self.write(REGS.EFUSE_REG_CONF, REGS.EFUSE_CONF_READ)
        self.write(REGS.EFUSE_REG_CMD, REGS.EFUSE_CMD_READ)
