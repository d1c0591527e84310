"""The two payload codecs, each small enough for the device that receives it.

P1 (STM32L0): LZSS in heatshrink's bit format with a 2^8-byte window and 2^7-byte lookahead -
the decoder needs 256 bytes of history and no tables. heatshrink2 (C) encodes; the decoder here
is the Python twin of firmware/lib/rd_lzss.c.

P2 (STM32H7, ESP32): raw LZMA1 with a 4 KiB dictionary, lc=1 lp=0 pb=0. lc+lp <= 1 keeps the
probability tables at 6.6 KiB, so the device decoder fits 12 KiB with its dictionary; the
instruction stream is mostly low-entropy diff bytes, where more literal context buys almost
nothing (measured: < 0.5 %). Python's lzma encodes and decodes it; firmware/lib/rd_lzma.c is the
device decoder.
"""

import lzma

import heatshrink2

from rig.errors import RigError

LZSS_WINDOW_BITS = 8
LZSS_LOOKAHEAD_BITS = 7
P1_PARAM = LZSS_WINDOW_BITS << 4 | LZSS_LOOKAHEAD_BITS

LZMA_DICT_SIZE = 4096
LZMA_LC, LZMA_LP, LZMA_PB = 1, 0, 0
P2_PARAM = (LZMA_PB * 5 + LZMA_LP) * 9 + LZMA_LC


def _lzma_filters(lc: int, lp: int, pb: int) -> list[dict]:
    # The encoder's settings (the decoder ignores them): liblzma's best parser at full match
    # length, ~2 % smaller patches on the corpus than its default; PRESET_EXTREME would add
    # < 0.1 % for a sixth more time (bench/bench_delta.py).
    return [{"id": lzma.FILTER_LZMA1, "dict_size": LZMA_DICT_SIZE, "lc": lc, "lp": lp, "pb": pb,
             "preset": 9, "mode": lzma.MODE_NORMAL, "mf": lzma.MF_BT4, "nice_len": 273}]


def compress_p1(data: bytes) -> bytes:
    return heatshrink2.compress(data, window_sz2=LZSS_WINDOW_BITS, lookahead_sz2=LZSS_LOOKAHEAD_BITS)


def compress_p2(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=_lzma_filters(LZMA_LC, LZMA_LP, LZMA_PB))


def decompress_p1(payload: bytes, size: int, param: int) -> bytes:
    """Decode exactly `size` bytes; RigError when the payload does not hold them."""
    if param != P1_PARAM:
        raise RigError(f"P1 patch wants LZSS window/lookahead 0x{param:02x}; devices decode 0x{P1_PARAM:02x} only")
    bits = "".join(f"{b:08b}" for b in payload)
    nbits = len(bits)
    # heatshrink's window starts zero-filled, and its encoder does refer to those zeros.
    history = 1 << LZSS_WINDOW_BITS
    out = bytearray(history)
    size += history
    pos = 0
    while len(out) < size:
        if pos + 1 > nbits:
            raise RigError("patch payload ends early (LZSS); the patch is truncated or corrupt")
        tag = bits[pos]
        pos += 1
        if tag == "1":
            if pos + 8 > nbits:
                raise RigError("patch payload ends early (LZSS); the patch is truncated or corrupt")
            out.append(int(bits[pos : pos + 8], 2))
            pos += 8
            continue
        need = LZSS_WINDOW_BITS + LZSS_LOOKAHEAD_BITS
        if pos + need > nbits:
            raise RigError("patch payload ends early (LZSS); the patch is truncated or corrupt")
        dist = int(bits[pos : pos + LZSS_WINDOW_BITS], 2) + 1
        count = int(bits[pos + LZSS_WINDOW_BITS : pos + need], 2) + 1
        pos += need
        # A match running past the stream's end is cut there, as the device decoder stops there.
        for _ in range(min(count, size - len(out))):
            out.append(out[-dist])
    return bytes(out[history:])


def decompress_p2(payload: bytes, size: int, param: int) -> bytes:
    if param >= 9 * 5 * 5:
        raise RigError(f"P2 patch has an invalid LZMA properties byte 0x{param:02x}")
    lc, lp, pb = param % 9, param // 9 % 5, param // 45
    if lc + lp > LZMA_LC + LZMA_LP:
        raise RigError(f"P2 patch wants LZMA lc={lc} lp={lp}; devices decode lc+lp <= {LZMA_LC + LZMA_LP} only")
    dec = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=_lzma_filters(lc, lp, pb))
    try:
        out = dec.decompress(payload, max_length=size)
    except lzma.LZMAError as exc:
        raise RigError(f"patch payload is corrupt (LZMA: {exc})") from None
    if len(out) != size:
        raise RigError("patch payload ends early (LZMA); the patch is truncated or corrupt")
    return out


COMPRESS = {1: compress_p1, 2: compress_p2}
DECOMPRESS = {1: decompress_p1, 2: decompress_p2}
PARAMS = {1: P1_PARAM, 2: P2_PARAM}
