"""Hostile input never crashes the server: every reply it does send is a well-formed SMP response.

The server runs on a small stand-in for the board context (a real flash file, the console TX
collected), so hypothesis can throw thousands of frames at it quickly; the smpclient tests cover
the same code behind a real pty.
"""

import struct

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smp import packet as smppacket

from rig.image.layouts import LAYOUTS
from rig.image.mcuboot import IMAGE_MAGIC
from rig.sim.flash import Flash, PowerCut
from rig.sim.smp import SmpServer

KEYS = ["off", "len", "data", "sha", "image", "upgrade", "hash", "confirm", "d", "slot", "force", "x"]
VALUES = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40), st.booleans(), st.none(), st.text(max_size=20),
    st.binary(max_size=300), st.binary(max_size=64).map(lambda b: struct.pack("<I", IMAGE_MAGIC) + bytes(28) + b),
    st.lists(st.integers(), max_size=3))
BODIES = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6).map(cbor2.dumps),
    st.binary(max_size=80))


class Console:
    """The board side the server touches: flash, TX bytes, the clock, the reset line."""

    def __init__(self, layout, flash):
        self.layout = layout
        self.flash = flash
        self.tx = bytearray()
        self.resets = 0

    def write(self, data: bytes) -> None:
        self.tx += data

    def sleep(self, seconds: float) -> None:
        pass

    def reset(self, cause: str) -> None:
        self.resets += 1
        raise PowerCut(f"{cause} reset")  # as BoardContext.reset: it never returns


@pytest.fixture(scope="module", params=["stm32h743-2x1m", "stm32l073-192k"])
def console(request, tmp_path_factory):
    layout = LAYOUTS[request.param]
    flash = Flash(tmp_path_factory.mktemp("fuzz") / "flash.bin", layout.geometry)
    yield Console(layout, flash)
    flash.close()


def replies(tx: bytes) -> list[bytes]:
    out = []
    decoder = None
    for line in tx.splitlines(keepends=True):
        if decoder is None:
            decoder = smppacket.decode()
            next(decoder)
        try:
            decoder.send(line)
        except StopIteration as done:
            out.append(done.value)
            decoder = None
    assert decoder is None, "a reply ended mid-packet"
    return out


def feed(console: Console, wire: bytes) -> list[bytes]:
    server = SmpServer(console)
    console.tx.clear()
    resets = console.resets
    try:
        server.feed(wire)
    except PowerCut:
        assert console.resets == resets + 1  # only the OS reset command may stop the server
    return replies(bytes(console.tx))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_random_bytes(console, data):
    feed(console, data)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=st.integers(0, 7), version=st.integers(0, 3), group=st.sampled_from([0, 1, 2, 9, 63, 64, 0xFFFF]),
       cmd=st.integers(0, 8), seq=st.integers(0, 255), body=BODIES, lie=st.integers(-3, 3),
       more=st.binary(max_size=20))
def test_random_frames(console, op, version, group, cmd, seq, body, lie, more):
    length = max(0, min(0xFFFF, len(body) + lie))
    packet = struct.pack(">BBHHBB", op | version << 3, 0, length, group, seq, cmd) + body + more
    answered = feed(console, b"".join(smppacket.encode(packet)))
    for reply in answered:  # `more` may hold a second request: a packet can carry several
        rsp_op, _, rsp_len, _, _, _ = struct.unpack_from(">BBHHBB", reply)
        assert rsp_op & 7 in (1, 3) and rsp_len == len(reply) - 8
        assert isinstance(cbor2.loads(reply[8:]), dict)
    if answered:
        assert struct.unpack_from(">BBHHBB", answered[0])[3:5] == (group, seq)
