"""The instruction stream: bsdiff4's matches re-serialised as one forward-only sequence of ops.

Each op starts with an unsigned LEB128 varint v (at most 5 bytes); v & 3 is the op, v >> 2 its
argument n (never 0). The device keeps one cursor into the old image, starting at 0:

    0 COPY n     write old[p:p+n]; p += n
    1 ADD n      n diff bytes follow; write (old[p+i] + d[i]) mod 256; p += n
    2 INSERT n   n literal bytes follow; write them
    3 SEEK n     p += zigzag-decoded n (0 <= p <= old_size afterwards)

bsdiff's "diff" regions are mostly zero bytes with sparse changes. Shipping them as ADD ops
(detools' sequential format does) makes the codec spend bits on long zero runs; splitting every
zero run off as a COPY costs a varint per run instead. Which wins depends on the codec and the
pair, so the encoder cuts only zero runs of at least `gap` bytes (and those at region edges) and
make() tries a few gaps (measured in bench/bench_delta.py).
"""

import re
import struct

import bsdiff4.core

from rig.errors import RigError

COPY, ADD, INSERT, SEEK = range(4)
_ZERO_RUNS = re.compile(rb"\x00+")
_MAX_VARINT = 5


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _op(kind: int, n: int) -> bytes:
    return _varint(n << 2 | kind)


def _zigzag(n: int) -> int:
    return n << 1 if n >= 0 else (-n << 1) - 1


def _unzigzag(n: int) -> int:
    return n >> 1 if not n & 1 else -((n + 1) >> 1)


class Matches:
    """bsdiff4's match list: (diff length, extra length, seek) triples plus the diff and extra bytes."""

    def __init__(self, old: bytes, new: bytes):
        control, self.diff, self.extra = bsdiff4.core.diff(old, new)
        # bsdiff's control block: 24-byte records of three sign-magnitude little-endian int64s.
        self.triples = []
        for off in range(0, len(control), 24):
            x, y, z = (-(v & ~(1 << 63)) if v >> 63 else v for v in struct.unpack_from("<3Q", control, off))
            self.triples.append((x, y, z))


def serialise(m: Matches, gap: int) -> bytes:
    out = bytearray()
    di = ei = 0
    for x, y, z in m.triples:
        region = m.diff[di : di + x]
        di += x
        pos = 0
        for run in _ZERO_RUNS.finditer(region):
            if run.end() - run.start() < gap and 0 < run.start() and run.end() < x:
                continue  # a short inner run stays inside the ADD
            if run.start() > pos:
                out += _op(ADD, run.start() - pos) + region[pos : run.start()]
            out += _op(COPY, run.end() - run.start())
            pos = run.end()
        if pos < x:
            out += _op(ADD, x - pos) + region[pos:]
        if y:
            out += _op(INSERT, y) + m.extra[ei : ei + y]
            ei += y
        if z:
            out += _op(SEEK, _zigzag(z))
    return bytes(out)


def _add(old: bytes, diff: bytes) -> bytes:
    # Byte-wise addition mod 256 over the whole run at once: add the low 7 bits of every byte
    # (no carry can cross a byte), then fix each top bit with XOR.
    n = len(old)
    low, top = int.from_bytes(b"\x7f" * n), int.from_bytes(b"\x80" * n)
    a, b = int.from_bytes(old, "little"), int.from_bytes(diff, "little")
    return (((a & low) + (b & low)) ^ ((a ^ b) & top)).to_bytes(n, "little")


def run(old: bytes, stream: bytes, new_size: int) -> bytes:
    """Execute a decoded stream against the old image; RigError (one line) on any malformed op."""
    out = bytearray()
    p = i = 0
    end = len(stream)

    def corrupt(why: str) -> RigError:
        return RigError(f"patch instructions are corrupt at stream byte {i}: {why}")

    while i < end:
        v = shift = 0
        for k in range(_MAX_VARINT + 1):
            if k == _MAX_VARINT or i >= end:
                raise corrupt("bad varint")
            b = stream[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        kind, n = v & 3, v >> 2
        if v >> 32 or n == 0:
            # the device decodes into 32 bits; nothing legitimate is that long or empty
            raise corrupt("op length 0 or over 32 bits")
        if kind == SEEK:
            p += _unzigzag(n)
            if not 0 <= p <= len(old):
                raise corrupt("seek outside the old image")
            continue
        if len(out) + n > new_size:
            raise corrupt("writes past the end of the new image")
        if kind == INSERT or kind == ADD:
            if i + n > end:
                raise corrupt("op data runs past the stream")
            data = stream[i : i + n]
            i += n
        if kind == INSERT:
            out += data
            continue
        if p + n > len(old):
            raise corrupt("reads past the end of the old image")
        out += old[p : p + n] if kind == COPY else _add(old[p : p + n], data)
        p += n
    if len(out) != new_size:
        raise RigError(f"patch instructions end after {len(out)} of {new_size} bytes; the patch is corrupt")
    return bytes(out)
