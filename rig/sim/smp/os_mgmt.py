"""MCUmgr OS group (0): echo, reset and the transport parameters smpclient asks for on connect."""

from rig.sim.smp.protocol import BOOL, TSTR, decode_map

ECHO = 0
RESET = 5
MCUMGR_PARAMS = 6
NETBUF_COUNT = 4  # CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT
RESET_DELAY = 0.25  # CONFIG_MCUMGR_GRP_OS_RESET_MS: the reply leaves before the chip resets


class OsGroup:
    def __init__(self, netbuf_size: int):
        self._netbuf_size = netbuf_size
        self.reset_requested = False

    def echo(self, body: bytes) -> dict:
        return {"r": decode_map(body, {"d": TSTR}).get("d", "")}

    def reset(self, body: bytes) -> dict:
        decode_map(body, {"force": BOOL})  # no reset hooks here, so "force" changes nothing
        self.reset_requested = True
        return {}

    def mcumgr_params(self, body: bytes) -> dict:
        return {"buf_size": self._netbuf_size, "buf_count": NETBUF_COUNT}
