"""A tiny threaded HTTP server on loopback for the rack's instruments (power switch, control endpoint)."""

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

# handle(method, path, query) -> (status, body, content type)
Handler = Callable[[str, str, dict[str, str]], tuple[int, str, str]]


class HttpEndpoint:
    def __init__(self, host: str, port: int, handle: Handler, name: str):
        class RequestHandler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                self._dispatch("GET")

            def do_POST(self):  # noqa: N802
                self._dispatch("POST")

            def _dispatch(self, method):
                url = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                status, text, ctype = handle(method, url.path, query)
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass  # instruments are polled; the daemon log records state changes instead

        self._server = ThreadingHTTPServer((host, port), RequestHandler)
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                         name=name, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
