"""The SMP server a virtual STM32 app runs on its console: packets in, replies out through ctx.

Transport-agnostic above the framing: `feed` takes console RX bytes as they come, `handle_packet`
takes one whole SMP packet and returns the reply packets, for a transport that frames otherwise.
Request processing follows Zephyr's smp.c: several requests may share a packet and are answered
one by one; the first failing one ends the packet; a packet too short for a header is dropped.
"""

from collections.abc import Callable
from typing import Protocol

from rig.image.layouts import Layout
from rig.sim.flash import Flash
from rig.sim.smp import framing, img_mgmt, os_mgmt
from rig.sim.smp.protocol import (
    HEADER_SIZE,
    VERSION_1,
    VERSION_2,
    Group,
    GroupError,
    Header,
    MgmtErr,
    MgmtError,
    Op,
    encode,
)
from rig.sim.smp.slots import Slots

# CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE: the largest decoded frame a request may be. Zephyr's
# default is 384; boards that take uploads raise it, and so do we for a faster upload.
NETBUF_SIZE = 2048

Handler = Callable[[bytes], dict]


class Context(Protocol):
    """What the server needs of rig.sim.board.BoardContext."""

    layout: Layout
    flash: Flash

    def write(self, data: bytes) -> None: ...
    def sleep(self, seconds: float) -> None: ...
    def reset(self, cause: str) -> None: ...


class SmpServer:
    def __init__(self, ctx: Context, netbuf_size: int = NETBUF_SIZE):
        self._ctx = ctx
        self._deframer = framing.Deframer(netbuf_size)
        self._os = os_mgmt.OsGroup(netbuf_size)
        image = img_mgmt.ImageGroup(ctx.flash, Slots(ctx.flash, ctx.layout))
        # (group, command) -> (read handler, write handler), as Zephyr's mgmt_handler tables.
        self._handlers: dict[tuple[int, int], tuple[Handler | None, Handler | None]] = {
            (Group.OS, os_mgmt.ECHO): (self._os.echo, self._os.echo),
            (Group.OS, os_mgmt.RESET): (None, self._os.reset),
            (Group.OS, os_mgmt.MCUMGR_PARAMS): (self._os.mcumgr_params, None),
            (Group.OS, os_mgmt.BOOTLOADER_INFO): (self._os.bootloader_info, None),
            (Group.IMAGE, img_mgmt.STATE): (image.state_read, image.state_write),
            (Group.IMAGE, img_mgmt.UPLOAD): (None, image.upload),
            (Group.IMAGE, img_mgmt.ERASE): (None, image.erase),
        }
        self._translate_v1 = {Group.IMAGE: img_mgmt.translate_v1}

    def feed(self, data: bytes) -> None:
        """Console RX bytes, split or merged anyhow; replies go out through ctx.write."""
        for packet in self._deframer.feed(data):
            for reply in self.handle_packet(packet):
                self._ctx.write(framing.encode(reply))
            if self._os.reset_requested:
                self._ctx.sleep(os_mgmt.RESET_DELAY)
                self._ctx.reset("software")

    def handle_packet(self, packet: bytes) -> list[bytes]:
        replies = []
        while len(packet) >= HEADER_SIZE:
            hdr = Header.unpack(packet)
            body, packet = packet[HEADER_SIZE : HEADER_SIZE + hdr.length], packet[HEADER_SIZE + hdr.length :]
            try:
                if len(body) < hdr.length:
                    raise MgmtError(MgmtErr.ECORRUPT)
                replies.append(self._handle(hdr, body))
            except MgmtError as exc:
                data = encode({"rc": exc.rc})
                replies.append(hdr.response(len(data)) + data)
                break
        return replies

    def _handle(self, hdr: Header, body: bytes) -> bytes:
        if hdr.version > VERSION_2:
            raise MgmtError(MgmtErr.UNSUPPORTED_TOO_NEW)
        read, write = self._handlers.get((hdr.group, hdr.cmd), (None, None))
        handlers: dict[int, Callable[[bytes], dict] | None] = {Op.READ: read, Op.WRITE: write}
        handler = handlers.get(hdr.op)
        if handler is None:
            raise MgmtError(MgmtErr.ENOTSUP)
        try:
            payload = handler(body)
        except GroupError as exc:
            if hdr.version == VERSION_1:
                raise MgmtError(self._translate_v1.get(exc.group, lambda rc: MgmtErr.EUNKNOWN)(exc.rc)) from exc
            payload = {"err": {"group": int(exc.group), "rc": int(exc.rc)}}
        data = encode(payload)
        return hdr.response(len(data)) + data
