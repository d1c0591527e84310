"""The OTA server: serves signed images and patches over HTTP(S) with Range requests and resume,
paced by a link profile, with injected faults, counting every byte it serves to each device.

Devices name themselves with `?device=ID` (the virtual and reference firmware append it); a client
that does not is counted under its IP address.
"""

import re
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from rig.errors import RigError
from rig.ota.faults import Fault
from rig.ota.links import PROFILES, LinkProfile

CHUNK = 512  # bytes per paced write: small enough that a drop lands within half a KiB
HANDSHAKE_S = 10.0  # a TLS client that has not finished its handshake by then is dropped
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class DeviceStats:
    requests: int = 0
    bytes_served: int = 0
    ranges: list[tuple[str, int, int]] = field(default_factory=list)  # (file, first, last served)
    faults_fired: list[str] = field(default_factory=list)


class _Httpd(ThreadingHTTPServer):
    # A fleet connects in storms: a wave of thousands of devices opens its downloads at once, and
    # socketserver's default backlog of 5 would turn that into SYN retries of seconds.
    request_queue_size = 4096
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A TLS handshake the client broke off - it refused the certificate, or lost power - is
        the client's business (it says why on its side); anything else is a bug worth a traceback."""
        if not isinstance(sys.exc_info()[1], OSError):  # ssl.SSLError is an OSError
            super().handle_error(request, client_address)


class OtaServer:
    """Use as a context manager; `url(name, device)` gives a device the address of an artefact."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None,
                 link: LinkProfile = PROFILES["loopback"], chunk: int = CHUNK):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise RigError(f"OTA server: {root} is not a folder of artefacts")
        self.link = link
        # bytes per write: CHUNK places a fault within half a KiB; a fleet's server (thousands of
        # downloads at once, no faults) writes 64 KiB at a time or its threads fight for the GIL
        self.chunk = chunk
        self.links: dict[str, LinkProfile] = {}  # per device, overrides `link`
        self.faults: dict[str, list[Fault]] = {}  # per device; "*" applies to every device
        self.stats: dict[str, DeviceStats] = {}
        self.listeners: list[Callable[[str, str, int], None]] = []
        self._lock = threading.Condition()
        self._active = 0  # requests being answered
        self._active_by: dict[str, int] = {}  # the same, per device
        self.peak_active = 0  # the most requests answered at once (the fleet benchmark's concurrency)
        # TLS per connection, on the connection's own thread: a handshake that stalls (a board that
        # lost power mid-handshake) or fails (a board that refused the certificate) holds up no one.
        self.tls = tls
        self._httpd = _Httpd((host, port), _handler(self))
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="ota-server", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def url(self, name: str, device: str | None = None) -> str:
        host, port = self.address
        query = f"?device={quote(device)}" if device else ""
        return f"{self.scheme}://{host}:{port}/{quote(name)}{query}"

    def on_bytes(self, listener: Callable[[str, str, int], None]) -> None:
        """Call listener(device, file, end_offset) after every chunk served (power-cut triggers)."""
        self.listeners.append(listener)

    def device(self, device: str) -> DeviceStats:
        with self._lock:
            return self.stats.setdefault(device, DeviceStats())

    def restart_count(self, device: str) -> None:
        """Count the device afresh (a new delivery: its requests from 1, its bytes from 0)."""
        self.wait_idle(device)
        with self._lock:
            self.stats[device] = DeviceStats()

    def wait_idle(self, device: str | None = None, timeout: float = 10.0) -> bool:
        """Wait until no request (of `device`, if given) is being answered, so the counters are
        final; boards updated at once each wait for their own downloads only."""
        with self._lock:
            if device is None:
                return self._lock.wait_for(lambda: self._active == 0, timeout)
            return self._lock.wait_for(lambda: self._active_by.get(device, 0) == 0, timeout)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- used by the handler
    def _resolve(self, name: str) -> Path | None:
        path = (self.root / name.lstrip("/")).resolve()
        return path if path.is_file() and self.root in path.parents else None

    def _begin(self, device: str) -> tuple[list[Fault], LinkProfile]:
        with self._lock:
            stats = self.stats.setdefault(device, DeviceStats())
            stats.requests += 1
            self._active += 1
            self._active_by[device] = self._active_by.get(device, 0) + 1
            self.peak_active = max(self.peak_active, self._active)
            plan = self.faults.get(device, []) + self.faults.get("*", [])
            return [f for f in plan if f.applies(stats.requests)], self.links.get(device, self.link)

    def _served(self, device: str, name: str, first: int, end: int, n: int) -> None:
        with self._lock:
            stats = self.stats[device]
            stats.bytes_served += n
            if stats.ranges and stats.ranges[-1][:2] == (name, first):
                stats.ranges[-1] = (name, first, end - 1)
            else:
                stats.ranges.append((name, first, end - 1))
        for listener in self.listeners:
            listener(device, name, end)

    def _end(self, device: str) -> None:
        with self._lock:
            self._active -= 1
            self._active_by[device] -= 1
            self._lock.notify_all()

    def _fired(self, device: str, what: str) -> None:
        with self._lock:
            self.stats[device].faults_fired.append(what)


def _handler(server: OtaServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "rig-ota/1"

        def log_message(self, fmt, *args):  # the stats are the log; keep stderr for errors
            pass

        def setup(self):
            if server.tls is not None:
                self.request.settimeout(HANDSHAKE_S)
                self.request = server.tls.wrap_socket(self.request, server_side=True)
                self.request.settimeout(None)
            super().setup()

        def do_HEAD(self):
            self._counted(body=False)

        def do_GET(self):
            self._counted(body=True)

        def _counted(self, body: bool):
            url = urlsplit(self.path)
            device = parse_qs(url.query).get("device", [self.client_address[0]])[0]
            faults, link = server._begin(device)
            try:
                self._serve(url, device, faults, link, body)
            finally:
                server._end(device)

        def _serve(self, url, device, faults, link, body: bool):
            name = url.path.lstrip("/")
            for f in faults:
                if f.kind == "wrong-file":
                    server._fired(device, f"wrong-file {f.other_file} for {name}")
                    name = f.other_file
            path = server._resolve(name)
            if path is None:
                return self._error(HTTPStatus.NOT_FOUND, f"no artefact {name}")
            data = path.read_bytes()
            for f in faults:
                if f.kind == "truncate":
                    data = data[: f.offset(len(data))]
                    server._fired(device, f"truncate at {len(data)}")
            try:
                first, last = self._range(len(data))
            except ValueError:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                return self.end_headers()
            if link.latency_s:
                threading.Event().wait(link.latency_s)
            partial = "Range" in self.headers
            self.send_response(HTTPStatus.PARTIAL_CONTENT if partial else HTTPStatus.OK)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(last - first + 1))
            if partial:
                self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
            self.end_headers()
            if body:
                self._stream(device, name, data, first, last + 1, faults, link)

        def _range(self, size: int) -> tuple[int, int]:
            header = self.headers.get("Range")
            if header is None:
                return 0, size - 1
            m = RANGE.match(header.strip())
            if not m or m.groups() == ("", ""):
                raise ValueError(header)
            start, end = m.groups()
            if start == "":  # suffix range: the last N bytes
                first, last = max(0, size - int(end)), size - 1
            else:
                first, last = int(start), min(int(end), size - 1) if end else size - 1
            if first >= size or first > last:
                raise ValueError(header)
            return first, last

        def _stream(self, device, name, data, first, end, faults, link):
            data = bytearray(data)
            for f in faults:
                if f.kind == "corrupt":
                    at = f.offset(len(data))
                    for i in range(at, min(at + f.length, len(data))):
                        data[i] ^= 0xFF
                    server._fired(device, f"corrupt {at}+{f.length}")
            stops = sorted((f.offset(len(data)), f) for f in faults if f.kind in ("drop", "stall"))
            pos = first
            while True:
                for at, f in stops:
                    if at != pos:
                        continue
                    if f.kind == "stall":
                        server._fired(device, f"stall {f.seconds}s at {pos}")
                        threading.Event().wait(f.seconds)
                    else:
                        server._fired(device, f"drop at {pos}")
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                if pos >= end:
                    return
                upto = min(end, pos + server.chunk, *(at for at, _ in stops if at > pos))
                try:
                    self.wfile.write(data[pos:upto])
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    return  # the device went away (or lost power) mid-transfer
                link.pace(upto - pos)
                server._served(device, name, first, upto, upto - pos)
                pos = upto

        def _error(self, status, message):
            body = (message + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
