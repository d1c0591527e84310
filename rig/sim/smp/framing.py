"""SMP over a console UART, framed as Zephyr's mcumgr serial transport frames it.

A packet travels as base64 of (length u16 BE, packet, CRC16-XMODEM BE) in lines: the first starts
with 06 09, the rest with 04 14, each ends in a newline. The length counts packet + CRC.

Receiving (uart_mcumgr.c, serial_util.c): a line holds at most RX_LINE_MAX bytes with its newline,
a longer one is dropped whole; a 06 or 04 byte starts a new line wherever it comes, since base64
never contains one. Lines without a frame marker are console text and are ignored without
disturbing a packet in progress. A packet whose decoded bytes outgrow the netbuf, that is longer
than its length field, or whose CRC fails is dropped silently - the client times out, as it would
with a real board.

Sending (mcumgr_serial_tx_pkt): the first line carries up to 93 raw bytes (length included), the
following ones up to 90, and the CRC is never split from the last data bytes, so the lines are the
ones a Zephyr board prints, none longer than TX_LINE_MAX.
"""

import binascii
import struct

START = b"\x06\x09"
CONTINUE = b"\x04\x14"
_MARKER_BYTES = (START[0], CONTINUE[0])
RX_LINE_MAX = 128  # CONFIG_UART_MCUMGR_RX_BUF_SIZE, newline included
TX_LINE_MAX = 127  # MCUMGR_SERIAL_MAX_FRAME
_TX_RAW_MAX = (TX_LINE_MAX - 3) // 4 * 3  # raw bytes whose base64 fits a line with marker and newline


def crc16(data: bytes) -> int:
    """CRC16-XMODEM (Zephyr's crc16_itu_t with seed 0): over packet + its CRC it is 0."""
    return binascii.crc_hqx(data, 0)


def encode(packet: bytes) -> bytes:
    """The console lines that carry one SMP packet, as Zephyr transmits them."""
    crc = struct.pack(">H", crc16(packet))
    lines = []
    pos = 0
    budget = _TX_RAW_MAX
    first = True
    while pos < len(packet):
        raw = b""
        if first:
            raw = struct.pack(">H", len(packet) + 2) + packet[:1]
            pos = 1
            budget -= len(raw)  # Zephyr shrinks the budget once and keeps it for all later lines
        left = len(packet) - pos
        # Data plus the CRC must fit; if only the CRC would not, hold back a few bytes to travel with it.
        last = left <= budget - 2
        take = left if last else (min(budget, left) - (1 if budget - left in (0, 1) else 0))
        take -= take % 3
        raw += packet[pos : pos + take]
        pos += take
        if last:
            raw += packet[pos:] + crc
            pos = len(packet)
        lines.append((START if first else CONTINUE) + binascii.b2a_base64(raw, newline=False) + b"\n")
        first = False
    return b"".join(lines)


class Deframer:
    """Console RX bytes in (split or merged anyhow), complete SMP packets out."""

    def __init__(self, netbuf_size: int):
        self.netbuf_size = netbuf_size  # CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE: decoded bytes per packet
        self._line = bytearray()
        self._packet: bytearray | None = None  # decoded bytes after the length field
        self._decoded = 0  # bytes the netbuf holds, the length field included
        self._expected = 0

    def feed(self, data: bytes) -> list[bytes]:
        packets = []
        self._line += data
        while (end := self._line.find(b"\n")) >= 0:
            line = bytes(self._line[: end + 1])
            del self._line[: end + 1]
            start = max(line.rfind(bytes([b])) for b in _MARKER_BYTES)
            line = line[max(start, 0) :]
            if len(line) <= RX_LINE_MAX and (packet := self._fragment(line[:-1])) is not None:
                packets.append(packet)
        self._bound_pending()
        return packets

    def _bound_pending(self) -> None:
        # An unfinished line only matters from its last marker on, and past RX_LINE_MAX it is
        # already lost: keep enough to know that, not the whole flood.
        start = max(self._line.rfind(bytes([b])) for b in _MARKER_BYTES)
        if start > 0:
            del self._line[:start]
        del self._line[RX_LINE_MAX + 1 :]

    def _drop(self) -> None:
        self._packet = None

    def _fragment(self, frag: bytes) -> bytes | None:
        marker = frag[:2]
        if marker == START:
            self._packet = bytearray()
            self._decoded = 0
        elif marker != CONTINUE:
            return None  # console text, not for mcumgr
        elif not self._packet:
            self._drop()  # a continuation with no packet begun
            return None
        try:
            chunk = binascii.a2b_base64(frag[2:].rstrip(b"\r"), strict_mode=True)
        except binascii.Error:
            self._drop()
            return None
        if self._decoded + len(chunk) > self.netbuf_size:
            self._drop()
            return None
        self._decoded += len(chunk)
        self._packet += chunk
        if marker == START:
            if len(self._packet) < 2:
                self._drop()
                return None
            self._expected = struct.unpack_from(">H", self._packet)[0]
            del self._packet[:2]
        if len(self._packet) < self._expected:
            return None
        packet, self._packet = bytes(self._packet), None
        if len(packet) > self._expected or crc16(packet):
            return None
        return packet[:-2]
