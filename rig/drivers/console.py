"""The board console: labgrid's SerialDriver plus a transcript and line-oriented expect helpers.

Every byte read from the console, by a test, by the strategy waiting for the boot line, or by
`expect`, goes through `_read`, so the transcript is the console exactly as the host saw it. The
pytest plugin slices it per test for the JUnit report.

Flashing tools need the port for themselves (esptool resets an ESP32 through DTR/RTS and speaks
SLIP, smpclient speaks SMP frames), so a driver borrows the open port with `lent()` and hands it
back after.
"""

import contextlib
import re
import time
from collections.abc import Callable

import attr
import serial
from labgrid.driver import SerialDriver
from labgrid.factory import target_factory
from labgrid.util.proxy import proxymanager
from pexpect import TIMEOUT

from rig.errors import ConsoleTimeout, RigError

TAIL_LINES = 8  # lines quoted in a failed expectation
# drain() reads until the board pauses; one that never pauses (a boot loop printing its crash and
# banner over and over) is read this long, and what it sends afterwards is new output.
DRAIN_LIMIT_S = 2.0


@target_factory.reg_driver
@attr.s(eq=False)
class RigConsoleDriver(SerialDriver):
    """A SerialDriver that keeps a transcript of everything it reads."""

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.transcript = bytearray()

    def on_activate(self):
        try:
            super().on_activate()
        except serial.SerialException as exc:
            raise RigError(f"console {self.url}: cannot connect ({first_line(exc)}); is the serial server "
                           "up (virtual rack: `rig lab up`)?") from None

    def open(self):
        # labgrid asks pyserial to ignore the answers to RFC2217 SET_CONTROL (old ser2net sent
        # wrong ones), and pyserial then sleeps 100 ms after each DTR/RTS change. esptool's reset
        # must move both lines within the ESP32 DevKit's EN delay, so wait for the answers instead
        # (ser2net 4 and pyserial's PortManager give them).
        # A console that ser2net exports from a pty (a virtual board's) is the exception: a pty has no
        # modem lines and ser2net never answers SET_CONTROL on it, so keep labgrid's setting there.
        if isinstance(self.serial.port, str) and not self._exported_from_pty():
            self.serial.port = self.serial.port.replace("ign_set_control&", "").replace("?ign_set_control", "?")
        super().open()

    def _exported_from_pty(self) -> bool:
        extra = getattr(self.port, "extra", None) or {}
        return str(extra.get("path", "")).startswith("/dev/pts/")

    def _read(self, size: int = 1, timeout: float = 0.0, max_size: int | None = None):
        data = super()._read(size=size, timeout=timeout, max_size=max_size)
        self.transcript += data
        return data

    @property
    def url(self) -> str:
        """Where this console is: a device path or an rfc2217:// URL (for messages)."""
        if not hasattr(self.port, "host"):
            return self.port.port
        host, port = proxymanager.get_host_and_port(self.port)
        scheme = "rfc2217" if self.port.protocol == "rfc2217" else "socket"
        return f"{scheme}://{host}:{port}"

    def resolve_conflicts(self, client):
        # labgrid lets one client own a console and deactivates the others. rig's clients (esptool,
        # SMP, the reset driver) borrow the port per operation instead, so they coexist.
        pass

    def mark(self) -> int:
        """A position in the transcript; `text_since(mark)` returns what was read after it."""
        return len(self.transcript)

    def text_since(self, mark: int) -> str:
        return self.transcript[mark:].decode("utf-8", "replace").replace("\r\n", "\n")

    def drain(self, through: float = 0.0) -> None:
        """Read what the board has sent so far into the transcript and mark it all as seen.

        Later expectations then match only newer output; an old boot line left in the expect
        buffer would otherwise satisfy the wait for the next one. `through`: read for at least that
        many seconds (a board held stopped by `restart`: bytes it sent before it stopped may still
        be on their way). A board that never pauses is read for DRAIN_LIMIT_S (before, the read of
        a crash-looping ESP32 never ended).
        """
        if self.status:
            start = time.monotonic()
            deadline = start + max(through, DRAIN_LIMIT_S)
            while time.monotonic() < deadline:
                try:
                    self._read(size=1, timeout=0.05)
                except TIMEOUT:
                    if time.monotonic() >= start + through:
                        break
        self._expect.buffer = self._expect.string_type()
        # pexpect 4.9 keeps what the last match left in `_before` too, and the next expect refills
        # an emptier buffer from it (Expecter.existing_data): clear that as well, or a line read
        # before the drain still satisfies the next wait.
        self._expect._before = self._expect.buffer_type()

    def expect_line(self, pattern: str, timeout: float = 10.0) -> re.Match:
        """Wait for a console line matching the regex `pattern`; return its match.

        On timeout, raise ConsoleTimeout (a RigError) quoting the last lines seen, so a failing
        test or command says what the board printed instead.
        """
        start = self.mark()
        # Grouped: a pattern with alternatives must still be followed by the rest of its line (a
        # board that sends a byte at a time, an emulated core's UART, otherwise matches half lines).
        line_re = re.compile(rf"[^\n]*(?:{pattern})[^\n]*\r?\n".encode())
        try:
            _, _, match, _ = self.expect(line_re, timeout=timeout)
        except TIMEOUT:
            seen = self.text_since(start).strip().splitlines()[-TAIL_LINES:]
            quoted = " | ".join(seen) if seen else "nothing"
            raise ConsoleTimeout(f"console: no line matching {pattern!r} within {timeout:g} s; "
                                 f"last lines: {quoted}") from None
        found = re.search(pattern, match.group(0).decode("utf-8", "replace"))
        assert found is not None  # the byte regex matched the same pattern
        return found

    def send_line(self, line: str) -> None:
        self.write(line.encode() + b"\r\n")

    @contextlib.contextmanager
    def lent(self):
        """Lend the open port to another tool (esptool, smpclient) and take it back afterwards.

        The connection stays up throughout: reopening a console takes long enough to miss the
        boot lines of a board that an operation just reset. The console reads nothing meanwhile
        (a UART has one reader); the tool gets a handle whose open/close/port changes do nothing.
        """
        self.target.activate(self)
        self.drain()
        settings = self.serial.get_settings()
        try:
            yield LentPort(self.serial)
        finally:
            self.serial.apply_settings(settings)
            self._expect.buffer = self._expect.string_type()  # the tool's bytes are not console lines

def restart(console: RigConsoleDriver, stop: Callable[[], object], start: Callable[[], object],
            hold_s: float = 0.0, while_stopped: Callable[[], object] | None = None) -> None:
    """Stop the board (power off, reset line asserted, core halted), hold it stopped `hold_s`
    reading what it sent before it stopped, then start it: the console then holds the new start's
    output alone. Every power cycle and reset that is followed by a wait for the board's output
    goes through here.

    Lines a running board sent just before the stop landed (under load, the request takes its
    time) would otherwise be read after the start, and an old `rig: alive` or boot line would
    satisfy the wait for the new boot. `while_stopped` reads them first, for a caller that keeps
    the board's history (rig.ota.campaign); the rest is drained, through the whole hold, as bytes
    still on their way (ser2net, RFC2217) arrive within it.
    """
    stop()
    held_until = time.monotonic() + hold_s
    if while_stopped is not None:
        while_stopped()
    console.drain(through=max(0.0, held_until - time.monotonic()))
    time.sleep(max(0.0, held_until - time.monotonic()))  # a console not open reads nothing meanwhile
    start()


def first_line(exc: BaseException) -> str:
    """An exception as one line, for RigError messages (tools raise multi-line errors)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class LentPort:
    """An open pyserial port as a tool sees it while the console lends it: the tool may configure
    and use it, but opening, closing or re-pointing it is the console's business."""

    def __init__(self, port):
        object.__setattr__(self, "_port", port)

    def open(self):
        pass

    def close(self):
        pass

    @property
    def out_waiting(self) -> int:
        # Tools poll this to drain TX; URL ports (rfc2217, socket) have no TX buffer to wait on.
        return getattr(self._port, "out_waiting", 0)

    def __getattr__(self, name):
        return getattr(self._port, name)

    def __setattr__(self, name, value):
        if name != "port":
            setattr(self._port, name, value)
