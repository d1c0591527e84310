"""The console framing against the smp package's own encoder and decoder (what smpclient runs)."""

import base64
import os
import struct

import pytest
from smp import packet as smppacket

from rig.sim.smp import framing


def decode_with_smp(lines: bytes) -> bytes:
    decoder = smppacket.decode()
    next(decoder)
    for line in lines.splitlines(keepends=True):
        try:
            decoder.send(line)
        except StopIteration as done:
            return done.value
    raise AssertionError("smp's decoder wants more lines")


@pytest.mark.parametrize("size", [1, 2, 3, 8, 86, 87, 88, 89, 90, 91, 92, 176, 177, 178, 179, 180, 1000, 2040])
def test_replies_decode_with_smp_and_keep_zephyrs_line_limit(size):
    packet = os.urandom(size)
    lines = framing.encode(packet)
    assert decode_with_smp(lines) == packet
    split = lines.splitlines(keepends=True)
    assert split[0].startswith(framing.START)
    assert all(line.startswith(framing.CONTINUE) for line in split[1:])
    assert max(len(line) for line in split) <= framing.TX_LINE_MAX


def test_crc_travels_with_the_last_data_bytes():
    # 91 data bytes fill the first line's 93 raw bytes with no room for the CRC: Zephyr holds back
    # three data bytes so the CRC is never split, and every line decodes on its own.
    packet = bytes(range(91))
    raws = [base64.b64decode(line[2:]) for line in framing.encode(packet).splitlines()]
    assert [len(r) for r in raws] == [2 + 1 + 87, 3 + 2]
    assert raws[-1][-2:] == struct.pack(">H", framing.crc16(packet))


@pytest.mark.parametrize("line_length", [128, 64, 8])
def test_requests_from_smp_are_reassembled_however_the_bytes_arrive(line_length):
    packet = os.urandom(700)
    wire = b"".join(smppacket.encode(packet, line_length=line_length))
    deframer = framing.Deframer(2048)
    got = []
    for i in range(0, len(wire), 7):  # the UART hands over odd-sized pieces
        got += deframer.feed(wire[i : i + 7])
    assert got == [packet]
    assert framing.Deframer(2048).feed(wire + wire) == [packet, packet]


def test_console_text_between_fragments_does_not_disturb_a_packet():
    lines = list(smppacket.encode(os.urandom(300), line_length=64))
    wire = lines[0] + b"rig: alive uptime=3\r\n" + b"".join(lines[1:])
    assert len(framing.Deframer(2048).feed(wire)) == 1


def test_lines_over_the_rx_buffer_are_dropped():
    packet = os.urandom(200)
    long_line = b"".join(smppacket.encode(packet, line_length=200))  # one 200-byte line
    assert len(long_line) > framing.RX_LINE_MAX
    deframer = framing.Deframer(2048)
    assert deframer.feed(long_line) == []
    assert deframer.feed(b"".join(smppacket.encode(packet))) == [packet]  # and the next one is fine


def test_packets_larger_than_the_netbuf_are_dropped():
    wire = b"".join(smppacket.encode(os.urandom(400)))
    assert framing.Deframer(256).feed(wire) == []


def test_bad_crc_bad_base64_and_orphan_continuations_are_dropped():
    good = smppacket.encode(b"\x00\x00\x00\x02\x00\x00\x01\x00\xa0x")
    line = next(good)
    flipped = line[:-3] + (b"A" if line[-3:-2] != b"A" else b"B") + line[-2:]
    deframer = framing.Deframer(2048)
    assert deframer.feed(flipped) == []
    assert deframer.feed(framing.START + b"!!!!\n") == []
    assert deframer.feed(framing.CONTINUE + b"AAAA\n") == []
    assert deframer.feed(line) == [b"\x00\x00\x00\x02\x00\x00\x01\x00\xa0x"]


def test_a_marker_byte_restarts_the_line():
    packet = os.urandom(50)
    wire = b"noise \x06\x09garbage-without-newline" + b"".join(smppacket.encode(packet))
    assert framing.Deframer(2048).feed(wire) == [packet]


def test_an_endless_line_keeps_memory_bounded():
    deframer = framing.Deframer(2048)
    for _ in range(100):
        deframer.feed(b"x" * 10_000)
    packet = os.urandom(20)
    assert deframer.feed(b"\n" + b"".join(smppacket.encode(packet))) == [packet]
