"""otadata: ESP-IDF's CRC variant, slot selection, boot-next and state changes, fuzzed parser."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rig.errors import RigError
from rig.image import otadata as od


def test_crc_is_esp_rom_crc32_le_of_seq():
    # Known value from ESP-IDF otadata dumps: seq 1 carries crc 0x4743989A.
    assert od.crc(1) == 0x4743989A


def test_erased_otadata_boots_slot_0_and_round_trips():
    data = od.Otadata.initial().pack()
    assert data == b"\xff" * od.SIZE
    parsed = od.parse(data)
    assert parsed.active() is None
    assert parsed.active_slot(2) == 0
    assert parsed.pack() == data


def test_boot_next_alternates_sectors_and_slots():
    data, rewritten = od.Otadata.initial().boot_next(1, apps=2)
    assert rewritten == 0
    assert data.entries[0].seq == 2 and data.entries[0].state == od.State.NEW
    assert data.active_slot(2) == 1
    data, rewritten = data.boot_next(0, apps=2)
    assert rewritten == 1 and data.entries[1].seq == 3
    assert data.active_slot(2) == 0
    # Re-selecting the running slot keeps the seq: esp_ota_ops.c's loop stops at seq >= active.
    again, rewritten = data.boot_next(0, apps=2)
    assert rewritten == 0 and again.entries[0].seq == 3 and again.active() == 0


def test_entry_bytes_and_sector_layout():
    data, _ = od.Otadata.initial().boot_next(0, apps=2)
    raw = data.pack()
    assert raw[:4] == struct.pack("<I", 1)
    assert raw[24:28] == struct.pack("<I", od.State.NEW)
    assert raw[28:32] == struct.pack("<I", 0x4743989A)
    assert raw[32 : od.SECTOR] == b"\xff" * (od.SECTOR - 32)
    assert od.parse(raw) == data


def test_rollback_states():
    data, _ = od.Otadata.initial().boot_next(0, apps=2)
    data, _ = data.boot_next(1, apps=2)  # seq 2 in sector 1
    pending = data.with_state(1, od.State.PENDING_VERIFY)
    assert pending.active_slot(2) == 1
    aborted = pending.with_state(1, od.State.ABORTED)  # what the bootloader does on the next reset
    assert aborted.active() == 0 and aborted.active_slot(2) == 0
    valid = pending.with_state(1, od.State.VALID)
    assert valid.active_slot(2) == 1 and valid.entries[1].state_name() == "VALID"


def test_torn_entry_is_ignored():
    data, _ = od.Otadata.initial().boot_next(0, apps=2)
    data, _ = data.boot_next(1, apps=2)
    raw = bytearray(data.pack())
    raw[od.SECTOR + 28] ^= 0xFF  # crc of sector 1 corrupted: the bootloader falls back to sector 0
    assert od.parse(bytes(raw)).active() == 0


@pytest.mark.parametrize("call, message", [
    (lambda: od.parse(b"\xff" * 100), "expected 8192"),
    (lambda: od.Otadata.initial().boot_next(2, apps=2), "slot 2 does not exist"),
    (lambda: od.Otadata.initial().boot_next(0, apps=0), "1 to 16"),
    (lambda: od.Otadata.initial().with_state(2, od.State.VALID), "entry 2"),
])
def test_bad_input_one_line(call, message):
    with pytest.raises(RigError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


_ENTRY = st.binary(min_size=32, max_size=32) | st.builds(
    lambda seq, state, good: od.Entry(seq, state, crc=od.crc(seq) if good else 0).pack(),
    st.integers(0, 0xFFFFFFFF), st.sampled_from([*od.State, 7]), st.booleans())


@given(st.tuples(_ENTRY, _ENTRY).map(lambda e: b"".join(x.ljust(od.SECTOR, b"\xff") for x in e))
       | st.binary(max_size=64), st.integers(1, 16))
def test_fuzz_parser_only_rig_errors(data, apps):
    try:
        parsed = od.parse(data)
    except RigError:
        return
    slot = parsed.active_slot(apps)
    assert 0 <= slot < apps
    try:
        nxt, _ = parsed.boot_next(slot, apps)
    except RigError:
        return
    assert nxt.active_slot(apps) == slot


def _esp_ota_ops_seq(active_seq: int, slot: int, apps: int) -> int:
    # esp_rewrite_ota_data() in ESP-IDF's esp_ota_ops.c, as written there: count i up.
    i = 0
    while active_seq > (slot + 1) % apps + i * apps:
        i += 1
    return (slot + 1) % apps + i * apps


@given(st.integers(1, 5000), st.integers(1, 16), st.data())
def test_boot_next_seq_matches_esp_ota_ops(seq, apps, data):
    slot = data.draw(st.integers(0, apps - 1))
    current = od.Otadata((od.Entry.make(seq, od.State.VALID), od.Entry()))
    nxt, rewritten = current.boot_next(slot, apps)
    assert rewritten == 1
    assert nxt.entries[1].seq == _esp_ota_ops_seq(seq, slot, apps)
    assert nxt.entries[0] == current.entries[0]  # the running entry is never touched
