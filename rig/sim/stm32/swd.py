"""The virtual SWD probe's server: one TCP port per STM32 board, pyocd's remote-probe protocol.

The wire format is protocol version 1 of pyocd's own debug probe server (pyocd/probe/
tcp_probe_server.py: one JSON request per line, `{"id", "request", "arguments"}`, answered by
`{"id", "status", "result"|"error"}`), so the client side is pyocd's TCPClientProbe with only
discovery added (rig.sim.stm32.probe). Behind it sits the chip at debug-port level (dap.py), so
pyocd runs its real connect, discovery, reset and flash-programming sequences against it.
Every request that reaches the target takes the wire time of the bytes it carries under the lab's
timing model (rig.sim.timing: a probe's SWD throughput), in the client's thread, holding the wire.
"""

import json
import logging
import socketserver
import threading
from collections.abc import Callable

from rig.sim.flash import FlashError, PowerCut
from rig.sim.stm32.chip import BusFault, Chip, NoPower
from rig.sim.stm32.dap import DebugPort

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
# pyocd's TCPClientProbe.StatusCode values.
GENERAL_ERROR, TRANSFER_ERROR, TRANSFER_FAULT = 1, 10, 12
WORD = 4
# Requests that reach the target; the rest only talk to the probe, which has its own (USB) power.
TARGET_REQUESTS = {"reset", "assert_reset", "read_dp", "write_dp", "read_ap", "write_ap", "read_ap_multiple",
                   "write_ap_multiple", "read_mem", "write_mem", "read_block32", "write_block32",
                   "read_block8", "write_block8"}
# Requests that move data over SWD, and how many bytes each carries: (arguments) -> bytes.
WIRE_BYTES: dict[str, Callable[..., int]] = {
    "read_dp": lambda *a: WORD, "write_dp": lambda *a: WORD, "read_ap": lambda *a: WORD, "write_ap": lambda *a: WORD,
    "read_mem": lambda *a: WORD, "write_mem": lambda *a: WORD,  # a narrow access is still one 32-bit transfer
    "read_ap_multiple": lambda addr, count: WORD * count, "write_ap_multiple": lambda addr, values: WORD * len(values),
    "read_block32": lambda handle, addr, count: WORD * count,
    "write_block32": lambda handle, addr, words: WORD * len(words),
    "read_block8": lambda handle, addr, count: count, "write_block8": lambda handle, addr, data: len(data),
}


class SwdServer:
    """Serve one board's debug port on (host, port); port 0 picks a free one (see `.port`)."""

    def __init__(self, board, host: str = "127.0.0.1", port: int = 0):
        self.chip = Chip(board)
        self.dp = DebugPort(self.chip)
        self.lock = threading.Lock()  # one debugger transaction at a time, as one SWD wire
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                outer._serve_client(self.rfile, self.wfile)

        self._server = socketserver.ThreadingTCPServer((host, port), Handler, bind_and_activate=False)
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True
        self._server.server_bind()
        self._server.server_activate()
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"swd-{board.id}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- protocol
    def _serve_client(self, rfile, wfile) -> None:
        session = _Session(self)
        for line in rfile:
            try:
                request = json.loads(line)
                rid = request["id"]
            except (ValueError, KeyError):
                return  # not pyocd's protocol: drop the client
            status, result, error = session.handle(request.get("request"), request.get("arguments", []))
            response = {"id": rid, "status": status}
            if status:
                response["error"] = error
            elif result is not None:
                response["result"] = result
            wfile.write(json.dumps(response).encode() + b"\n")
            wfile.flush()


class _Session:
    """One connected debugger: its request handlers and memory interface handles."""

    def __init__(self, server: SwdServer):
        self.server = server
        self.chip, self.dp = server.chip, server.dp
        self.reset_asserted = False

    def handle(self, name: str, args: list) -> tuple[int, object, str]:
        handler = getattr(self, f"rq_{name}", None)
        if handler is None:
            return GENERAL_ERROR, None, f"unknown request {name!r}"
        with self.server.lock:
            try:
                if name in TARGET_REQUESTS:
                    self.chip.check_power()
                if name in WIRE_BYTES:
                    self.chip.board.timing.swd(WIRE_BYTES[name](*args))
                return 0, handler(*args), ""
            except PowerCut as cut:
                # An armed power cut hit a flash operation the debugger started.
                self.chip.board.cut_power()
                return TRANSFER_ERROR, None, str(cut)
            except NoPower as err:
                return TRANSFER_ERROR, None, str(err)
            except (BusFault, FlashError) as err:
                return TRANSFER_FAULT, None, str(err)
            except TypeError as err:
                return GENERAL_ERROR, None, f"malformed request {name!r}: {err}"

    # -- session and properties
    def rq_hello(self, version):
        if version != PROTOCOL_VERSION:
            raise TypeError(f"protocol version {version} unsupported (this server speaks {PROTOCOL_VERSION})")

    def rq_readprop(self, name):
        props = {
            "vendor_name": "rig",
            "product_name": f"virtual SWD ({self.chip.part.target_type})",
            "supported_wire_protocols": ["DEFAULT", "SWD"],
            "wire_protocol": "SWD",
            # Like an ST-LINK: the probe selects APs and DP banks itself.
            "capabilities": ["MANAGED_AP_SELECTION", "MANAGED_DPBANKSEL"],
        }
        if name not in props:
            raise TypeError(f"unknown property {name!r}")
        return props[name]

    def rq_open(self):
        pass

    def rq_close(self):
        pass

    def rq_lock(self):
        pass

    def rq_unlock(self):
        pass

    def rq_connect(self, protocol):
        pass

    def rq_disconnect(self):
        pass

    def rq_swj_sequence(self, length, bits):
        pass

    def rq_set_clock(self, frequency):
        pass

    def rq_flush(self):
        pass

    def rq_has_swo(self):
        return False

    # -- reset line
    def rq_reset(self):
        self.chip.core.set_nreset(True)
        self.chip.core.set_nreset(False)

    def rq_assert_reset(self, asserted):
        self.reset_asserted = bool(asserted)
        self.chip.core.set_nreset(self.reset_asserted)

    def rq_is_reset_asserted(self):
        return self.reset_asserted

    # -- DAP registers
    def rq_read_dp(self, addr):
        return self.dp.read_dp(addr)

    def rq_write_dp(self, addr, value):
        self.dp.write_dp(addr, value)

    def rq_read_ap(self, addr):
        return self.dp.read_ap(addr)

    def rq_write_ap(self, addr, value):
        self.dp.write_ap(addr, value)

    def rq_read_ap_multiple(self, addr, count):
        return [self.dp.read_ap(addr) for _ in range(count)]

    def rq_write_ap_multiple(self, addr, values):
        for value in values:
            self.dp.write_ap(addr, value)

    # -- memory interface of AP0 (handle 0): the fast path pyocd uses once the AP is known
    def rq_get_memory_interface_for_ap(self, ap_version, ap_address):
        return 0 if ap_address == 0 else None

    def rq_read_mem(self, handle, addr, transfer_size):
        return self.chip.read(addr, transfer_size // 8)

    def rq_write_mem(self, handle, addr, value, transfer_size):
        self.chip.write(addr, value, transfer_size // 8)

    def rq_read_block32(self, handle, addr, count):
        data = self.chip.read_block(addr, count * WORD)
        return [int.from_bytes(data[i : i + WORD], "little") for i in range(0, len(data), WORD)]

    def rq_write_block32(self, handle, addr, words):
        self.chip.write_block(addr, b"".join(w.to_bytes(WORD, "little") for w in words))

    def rq_read_block8(self, handle, addr, count):
        return list(self.chip.read_block(addr, count))

    def rq_write_block8(self, handle, addr, data):
        self.chip.write_block(addr, bytes(data))
