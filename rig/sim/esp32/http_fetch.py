"""The ESP32 app's HTTP(S) download: one artefact as a byte stream that survives broken links.

As esp_http_client with esp_https_ota's partial download: a GET with `Range: bytes=N-`, and when
the link drops mid-body, a new connection asking for the rest from the first byte not received.
Written on a raw socket, not http.client, so the firmware thread can notice a power cut while it
waits for bytes (every socket wait is short and followed by a power check).

https:// URLs go over TLS, every connection (each resume too) with a full handshake that checks
the server as esp-tls does with `cert_pem` set (MBEDTLS_SSL_VERIFY_REQUIRED): the chain up to the
CA the app embeds (rig.image.esp_app.embedded_ca), the validity dates against the board's clock
(CONFIG_MBEDTLS_HAVE_TIME_DATE, the time set by SNTP before any update - the virtual board's
clock is the host's), and the host name of the URL against the certificate's names (esp-tls's
common-name check, `skip_cert_common_name_check` false). A failed check is no broken link: the
download stops at once with the reason, as mbedtls_x509_crt_verify_info words it.
"""

import re
import select
import socket
import ssl
import time
from urllib.parse import urlsplit

from rig.errors import RigError
from rig.sim.broken import broken
from rig.sim.flash import PowerCut

POLL_S = 0.1  # longest wait before the power is checked again
LINK_TIMEOUT_S = 10.0  # no byte for this long: the link is lost
RETRIES = 5  # reconnections per download before the update is given up
RECV = 1024
CONTENT_RANGE = re.compile(rb"bytes (\d+)-(\d+)/(\d+)")
DEFAULT_PORTS = {"http": 80, "https": 443}
NO_CHECK_TIME = 0x200000  # OpenSSL X509_V_FLAG_NO_CHECK_TIME (Python's ssl has no name for it)
# OpenSSL's verify codes, in the words of mbedtls_x509_crt_verify_info (what esp-tls logs).
VERIFY_INFO = {
    10: "The certificate validity has expired",
    9: "The certificate validity starts in the future",
    62: "The certificate Common Name (CN) does not match with the expected CN",
    64: "The certificate Common Name (CN) does not match with the expected CN",
}
NOT_TRUSTED = "The certificate is not correctly signed by the trusted CA"
COMPLETE_LENGTH = re.compile(rb"bytes \*/(\d+)")


class LinkLost(RigError):
    """The server could not be reached again after RETRIES tries."""


class Download:
    """A file-like reader of `url` from byte `start`; `pos` is the next file offset to be returned."""

    def __init__(self, ctx, url: str, start: int = 0, ca_pem: bytes | None = None):
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise RigError(f"ota: {url!r}: this firmware fetches http:// and https:// URLs only")
        self._tls = None
        self.scheme = parts.scheme
        if parts.scheme == "https":
            if not ca_pem:
                raise RigError("ota: no CA certificate in this firmware; it cannot check an https:// server")
            self._tls = tls_context(ca_pem)
        self._ctx = ctx
        self._host, self._port = parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme]
        self._target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.pos = start
        self.total: int | None = None
        self.reconnects = 0
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._left = 0  # body bytes still due on the current connection

    def read(self, n: int) -> bytes:
        """Up to n bytes (fewer only at the end of the file); reconnects as often as RETRIES allows."""
        out = bytearray()
        while len(out) < n and (self.total is None or self.pos < self.total):
            if self._sock is None:
                self._connect()
                continue
            chunk = self._body(n - len(out))
            if chunk is None:
                self._drop()
                continue
            out += chunk
            self.pos += len(chunk)
        return bytes(out)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- one connection
    def _connect(self) -> None:
        start = self.pos
        try:
            self._sock = socket.create_connection((self._host, self._port), timeout=POLL_S * 10)
            if self._tls is not None:
                self._sock = self._handshake(self._sock)
            self._sock.sendall(f"GET {self._target} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
                               f"Range: bytes={start}-\r\nConnection: close\r\n\r\n".encode())
            self._buffer = b""
            head = self._headers()
        except OSError:
            head = None
        if head is None:
            self._drop()
            return
        status, fields = head
        if status == 416:
            # RFC 9110 15.5.17: the reply names the file's length (`Content-Range: bytes */N`). A
            # resume that starts at exactly N had every byte before the power went: nothing to fetch.
            whole = COMPLETE_LENGTH.match(fields.get(b"content-range", b""))
            if whole is not None and int(whole[1]) == start:
                self.total, self._left = start, 0
                self.close()
                return
            raise RigError(f"ota: the server has no byte {start} of the artefact (HTTP 416)")
        if status not in (200, 206):
            raise RigError(f"ota: the server answered HTTP {status}")
        if status == 200:  # no Range support: the whole file again, skip what we have
            self.total = int(fields.get(b"content-length", b"0"))
            self._left = self.total
            self._skip(start)
            return
        m = CONTENT_RANGE.match(fields.get(b"content-range", b""))
        if m is None or int(m[1]) != start:
            raise RigError("ota: the server's Content-Range does not start where this download asked")
        self.total = int(m[3])
        self._left = int(m[2]) - int(m[1]) + 1

    def _handshake(self, sock: socket.socket) -> ssl.SSLSocket:
        """TLS over the new connection; a certificate the app does not accept ends the download."""
        assert self._tls is not None
        try:
            return self._tls.wrap_socket(sock, server_hostname=self._host)
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            why = VERIFY_INFO.get(exc.verify_code, NOT_TRUSTED)
            raise RigError(f"ota: TLS handshake failed: {why} ({self._host}:{self._port})") from None

    def _headers(self) -> tuple[int, dict] | None:
        while b"\r\n\r\n" not in self._buffer:
            data = self._recv()
            if not data:
                return None
            self._buffer += data
        raw, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = raw.split(b"\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            return None
        fields = {}
        for line in lines[1:]:
            key, _, value = line.partition(b":")
            fields[key.strip().lower()] = value.strip()
        return status, fields

    def _skip(self, count: int) -> None:
        while count and self._sock is not None:
            chunk = self._body(count)
            if chunk is None:
                self._drop()
                return
            count -= len(chunk)

    def _body(self, n: int) -> bytes | None:
        """Up to n body bytes of this connection; None when the connection broke off."""
        if self._left <= 0:
            return None
        if not self._buffer:
            self._buffer = self._recv()
            if not self._buffer:
                return None
        chunk, self._buffer = self._buffer[: min(n, self._left)], self._buffer[min(n, self._left):]
        self._left -= len(chunk)
        return chunk

    def _recv(self) -> bytes:
        """Bytes from the socket; b"" when it closed or stayed silent for LINK_TIMEOUT_S."""
        deadline = time.monotonic() + LINK_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self._ctx.powered():
                self.close()
                raise PowerCut("power lost during the download")
            if self._sock is None:
                raise OSError("connection closed")
            try:
                # TLS: bytes already decrypted wait in the SSL object, not in the socket
                pending = isinstance(self._sock, ssl.SSLSocket) and self._sock.pending()
                ready = pending or select.select([self._sock], [], [], POLL_S)[0]
                if ready:
                    return self._sock.recv(RECV)
            except ssl.SSLWantReadError:
                continue  # part of a TLS record: wait for the rest
            except OSError:
                return b""
        return b""

    def _drop(self) -> None:
        """The link broke: wait a little, then go on from the first byte not received."""
        self.close()
        self.reconnects += 1
        if self.reconnects > RETRIES:
            raise LinkLost(f"ota: link lost {RETRIES} times; giving up at byte {self.pos}")
        if broken("resume-wrong-offset"):
            self.pos += RECV  # the broken model forgets the last chunk it received
        self._ctx.log(f"rig: ota link lost at {self.pos}; resuming")
        self._ctx.sleep(POLL_S)


def tls_context(ca_pem: bytes) -> ssl.SSLContext:
    """The checks esp-tls makes with `cert_pem` (see the module's docstring), less what the lab's
    broken-model switches turn off (rig/sim/broken.py)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_verify_locations(cadata=ca_pem.decode("ascii", "replace"))
    except ssl.SSLError:
        raise RigError("ota: the CA certificate this firmware embeds does not parse") from None
    if broken("no-host-check"):
        ctx.check_hostname = False  # skip_cert_common_name_check = true
    if broken("no-time-check"):
        ctx.verify_flags |= NO_CHECK_TIME  # mbedtls built without MBEDTLS_HAVE_TIME_DATE
    if broken("no-cert-check"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # MBEDTLS_SSL_VERIFY_NONE (CONFIG_ESP_TLS_SKIP_SERVER_CERT_VERIFY)
    return ctx
