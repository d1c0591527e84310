"""Partition table: generated from the esp32 layout, parsed back, malformed tables refused in one line."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rig.errors import RigError
from rig.image import esp_partitions as pt
from rig.image.layouts import LAYOUTS


def test_round_trip_matches_the_layout():
    table = pt.build()
    assert len(table) == pt.MAX_LENGTH
    entries = pt.parse(table)
    layout = LAYOUTS["esp32-4mb-ota"]
    for e in entries:
        p = layout.part(e.name)
        assert (e.offset, e.size) == (p.offset, p.size)
    assert [e.name for e in pt.ota_slots(entries)] == ["ota_0", "ota_1"]
    assert pt.pack(entries, layout.geometry.size) == table


def test_bytes_follow_esp_idf_format():
    table = pt.build()
    rows = [table[i : i + 32] for i in range(0, len(table), 32)]
    n = len(pt.parse(table))
    assert all(r[:2] == b"\xaa\x50" for r in rows[:n])
    assert rows[n] == b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(table[: 32 * n]).digest()
    assert set(table[32 * (n + 1) :]) == {0xFF}
    ota0 = pt.find(pt.parse(table), "ota_0")
    assert (ota0.type, ota0.subtype) == (0x00, 0x10)
    assert (pt.find(pt.parse(table), "otadata").type, pt.find(pt.parse(table), "otadata").subtype) == (1, 0)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t[:20], "shorter than one"),
        (lambda t: b"\x00\x00" + t[2:], "magic 0000"),
        (lambda t: t[:40] + bytes([t[40] ^ 1]) + t[41:], "MD5 row"),
        (lambda t: b"\xff" * len(t), "no MD5 row"),
        (lambda t: t.replace(b"\xff" * 32, b"\xaa\x50" + b"\x00" * 30), "follows the MD5 row"),
    ],
)
def test_malformed_tables_give_one_line(mutate, message):
    with pytest.raises(RigError, match=message) as info:
        pt.parse(mutate(pt.build()))
    assert "\n" not in str(info.value)


def test_overlap_and_alignment_refused():
    entries = list(pt.from_layout())
    ota1 = pt.find(entries, "ota_1")
    overlapping = [e if e.name != "ota_1" else pt.Entry("ota_1", 0, 0x11, ota1.offset - 0x10000, ota1.size)
                   for e in entries]
    with pytest.raises(RigError, match="overlaps"):
        pt.pack(overlapping)
    misaligned = [e if e.name != "ota_1" else pt.Entry("ota_1", 0, 0x11, ota1.offset + 0x1000, 0x1000)
                  for e in entries]
    with pytest.raises(RigError, match="not aligned"):
        pt.pack(misaligned)
    with pytest.raises(RigError, match="past the"):
        pt.pack(entries, flash_size=0x200000)


def test_non_esp32_layout_refused():
    with pytest.raises(RigError, match="needs an esp32 layout"):
        pt.from_layout("stm32h743-2x1m")
    with pytest.raises(RigError, match="no flash layout"):
        pt.build("nope")


@given(st.binary(max_size=0xC40))
def test_fuzz_random_bytes_only_rig_errors(data):
    try:
        pt.parse(data)
    except RigError:
        pass


@given(st.lists(st.tuples(st.integers(0, pt.MAX_LENGTH - 1), st.integers(0, 255)), max_size=8))
def test_fuzz_mutated_table_only_rig_errors(flips):
    table = bytearray(pt.build())
    for pos, value in flips:
        table[pos] = value
    try:
        pt.parse(bytes(table))
    except RigError:
        pass
