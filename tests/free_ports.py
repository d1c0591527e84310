"""Free loopback ports for tests that start servers, chosen below Linux's ephemeral range.

bind(("127.0.0.1", 0)) hands out a port of the ephemeral range (32768-60999), where any outgoing
connection of the machine (an RFC2217 client, an HTTP request) may take it between this check and
the lab's own bind - a flaky "address in use". Ports 24000-31999 are never given to outgoing
connections, and no fixed-port test rack uses them (those live in 22100-23999). Each process
scans from its own starting point, so parallel xdist workers rarely try the same port.
"""

import os
import socket

LOW, HIGH = 24000, 32000
_next = LOW + (os.getpid() * 7919) % (HIGH - LOW)


def free_port() -> int:
    global _next
    for _ in range(HIGH - LOW):
        port, _next = _next, LOW + (_next + 1 - LOW) % (HIGH - LOW)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {LOW}-{HIGH - 1}")
