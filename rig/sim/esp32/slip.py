"""SLIP framing (RFC 1055) as the ESP32 ROM loader uses it: every packet is wrapped in 0xC0."""

END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD


def encode(packet: bytes) -> bytes:
    return b"\xc0" + packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class Decoder:
    """Turns a byte stream into packets. Bytes outside a frame are dropped, as the ROM ignores
    line noise (and esptool's reset glitches) between packets."""

    def __init__(self):
        self._packet: bytearray | None = None
        self._escape = False

    def feed(self, data: bytes) -> list[bytes]:
        packets = []
        for byte in data:
            if self._packet is None:
                if byte == END:
                    self._packet = bytearray()
                continue
            if self._escape:
                self._escape = False
                # An invalid escape is kept verbatim: the packet then fails its length check.
                self._packet.append({ESC_END: END, ESC_ESC: ESC}.get(byte, byte))
            elif byte == ESC:
                self._escape = True
            elif byte == END:
                if self._packet:
                    packets.append(bytes(self._packet))
                    self._packet = None
                # An empty frame (two END bytes in a row) is the start of the next packet.
            else:
                self._packet.append(byte)
        return packets
