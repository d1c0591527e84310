"""MCUmgr OS group (0): echo, reset, the transport parameters smpclient asks for on connect, and
what the bootloader is (os_mgmt.c with CONFIG_MCUMGR_GRP_OS_MCUMGR_PARAMS and _BOOTLOADER_INFO)."""

from rig.sim.smp.protocol import BOOL, TSTR, MgmtErr, MgmtError, decode_map

ECHO = 0
RESET = 5
MCUMGR_PARAMS = 6
BOOTLOADER_INFO = 8
MCUBOOT_MODE_SWAP_USING_MOVE = 3  # MCUBOOT_MODE_* of bootutil's mcuboot_status.h
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

    def bootloader_info(self, body: bytes) -> dict:
        req = decode_map(body, {"query": TSTR})
        if "query" not in req:
            return {"bootloader": "MCUboot"}
        if req["query"] == "mode":
            # The MCUboot model refuses images below its stored security counter: downgrade prevention.
            return {"mode": MCUBOOT_MODE_SWAP_USING_MOVE, "no-downgrade": True}
        # Zephyr returns OS_MGMT_ERR_QUERY_YIELDS_NO_ANSWER (3) from the handler, so it goes out as rc 3.
        raise MgmtError(MgmtErr(3))
