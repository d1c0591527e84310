"""ESP-IDF otadata: which OTA slot the second-stage bootloader boots, and that app's rollback state.

Byte format (ESP-IDF `bootloader_support/include/esp_flash_partitions.h`, `app_update/esp_ota_ops.c`):
two 4 KiB sectors, each starting with a 32-byte `esp_ota_select_entry_t`
`{u32 ota_seq; u8 seq_label[20]; u32 ota_state; u32 crc}`, the rest of the sector erased (0xFF).
crc = esp_rom_crc32_le(UINT32_MAX, &ota_seq, 4), which is zlib's CRC-32 of the 4 seq bytes with
0xFFFFFFFF as the starting value (not the usual 0): seq 1 -> 0x4743989A.

Semantics, as bootloader_common.c and esp_ota_ops.c implement them:
- an entry is valid if ota_seq != 0xFFFFFFFF, its crc matches, and its state is not INVALID/ABORTED;
- the active entry is the valid one with the highest seq (sector 0 wins a tie);
- the active entry boots slot (seq - 1) % apps, where apps is the number of ota_N partitions;
- "boot slot N next" (esp_ota_set_boot_partition) writes the *other* sector with the smallest
  seq >= the active seq that maps to N, and state NEW (rollback enabled) or UNDEFINED;
- marking the app valid or invalid rewrites the active sector with the same seq and a new state.
Each change rewrites exactly one sector (erase + write of one entry), so a power cut tears at
most one of the two copies and the other still selects a bootable slot.
"""

import struct
import zlib
from dataclasses import dataclass, replace
from enum import IntEnum

from rig.errors import RigError

SECTOR = 0x1000
SIZE = 2 * SECTOR
ENTRY = struct.Struct("<I20sII")
ERASED_SEQ = 0xFFFFFFFF
ERASED_LABEL = b"\xff" * 20


class State(IntEnum):
    NEW = 0
    PENDING_VERIFY = 1
    VALID = 2
    INVALID = 3
    ABORTED = 4
    UNDEFINED = 0xFFFFFFFF


def crc(seq: int) -> int:
    return zlib.crc32(struct.pack("<I", seq), 0xFFFFFFFF)


@dataclass(frozen=True)
class Entry:
    seq: int = ERASED_SEQ
    state: int = State.UNDEFINED  # an int, not only a State: flash may hold any value
    label: bytes = ERASED_LABEL
    crc: int = 0xFFFFFFFF

    @classmethod
    def make(cls, seq: int, state: int, label: bytes = ERASED_LABEL) -> "Entry":
        """An entry as ESP-IDF writes it: crc computed from seq."""
        return cls(seq, state, label, crc(seq))

    @property
    def erased(self) -> bool:
        return self.pack() == b"\xff" * ENTRY.size

    @property
    def valid(self) -> bool:
        return (self.seq != ERASED_SEQ and self.crc == crc(self.seq)
                and self.state not in (State.INVALID, State.ABORTED))

    def pack(self) -> bytes:
        return ENTRY.pack(self.seq, self.label, self.state, self.crc)

    def state_name(self) -> str:
        try:
            return State(self.state).name
        except ValueError:
            return f"0x{self.state:08x}"


@dataclass(frozen=True)
class Otadata:
    entries: tuple[Entry, Entry] = (Entry(), Entry())

    @classmethod
    def initial(cls) -> "Otadata":
        """Erased otadata, as a factory image flashes it: the bootloader then boots ota_0."""
        return cls()

    def pack(self) -> bytes:
        """Both sectors, 8 KiB, ready to flash at the otadata partition's offset."""
        return b"".join(self.sector(i) for i in (0, 1))

    def sector(self, index: int) -> bytes:
        """One 4 KiB sector: what a single erase + write of entry `index` leaves in flash."""
        return self.entries[index].pack().ljust(SECTOR, b"\xff")

    def active(self) -> int | None:
        """Index (0 or 1) of the entry the bootloader follows, or None: boot the first app."""
        a, b = self.entries
        if a.valid and b.valid:
            return 0 if a.seq >= b.seq else 1
        if a.valid:
            return 0
        if b.valid:
            return 1
        return None

    def active_slot(self, apps: int) -> int:
        """The OTA slot the bootloader boots: (seq - 1) % apps, or 0 with no valid entry."""
        _check_apps(apps)
        index = self.active()
        return 0 if index is None else (self.entries[index].seq - 1) % apps

    def boot_next(self, slot: int, apps: int, rollback: bool = True) -> tuple["Otadata", int]:
        """esp_ota_set_boot_partition(ota_<slot>): the new otadata and the sector index it rewrote."""
        _check_apps(apps)
        if not 0 <= slot < apps:
            raise RigError(f"otadata: slot {slot} does not exist; this table has ota_0..ota_{apps - 1}")
        state = State.NEW if rollback else State.UNDEFINED
        index = self.active()
        if index is None:
            return self._write(0, slot + 1, state), 0
        seq = self.entries[index].seq
        # The smallest seq >= the active one that maps to `slot` (esp_ota_ops.c counts up to it).
        target = (slot + 1) % apps
        if seq > target:
            target += -(-(seq - target) // apps) * apps
        if target >= ERASED_SEQ:
            raise RigError("otadata: sequence number would overflow; erase otadata and start again")
        other = 1 - index
        return self._write(other, target, state), other

    def with_state(self, index: int, state: int) -> "Otadata":
        """Entry `index` rewritten with a new state and its seq kept (mark valid/invalid/aborted)."""
        if index not in (0, 1):
            raise RigError(f"otadata: entry {index} does not exist; there are two, 0 and 1")
        entry = self.entries[index]
        return self._write(index, entry.seq, state)

    def _write(self, index: int, seq: int, state: int) -> "Otadata":
        # The label stays what the sector held, as rewrite_ota_seq() keeps the rest of the struct.
        entry = replace(self.entries[index], seq=seq, state=int(state), crc=crc(seq))
        entries = list(self.entries)
        entries[index] = entry
        return Otadata((entries[0], entries[1]))


def parse(data: bytes) -> Otadata:
    """Both entries of an 8 KiB otadata partition. Invalid entries are kept (valid=False), as the
    bootloader reads them; only a wrong size is an error."""
    if len(data) != SIZE:
        raise RigError(f"otadata: {len(data)} bytes, expected {SIZE} (two 4 KiB sectors)")
    entries = []
    for index in (0, 1):
        seq, label, state, stored_crc = ENTRY.unpack_from(data, index * SECTOR)
        entries.append(Entry(seq, state, label, stored_crc))
    return Otadata((entries[0], entries[1]))


def _check_apps(apps: int) -> None:
    if not 1 <= apps <= 16:
        raise RigError(f"otadata: {apps} OTA app partitions; ESP-IDF supports 1 to 16")
