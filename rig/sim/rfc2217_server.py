"""A board's console as an RFC2217 server, the way labgrid's exporter serves a real port with ser2net.

pyserial's own rfc2217.PortManager speaks the Telnet/RFC2217 side; it is handed a stand-in for a
serial port whose settings land on the virtual UART and whose DTR/RTS reach the board's pins
(rig.sim.devkit), so esptool's reset sequences work over the network as they do over USB. The
baud rate a client sets becomes the board's UART rate, which the lab's timing model paces at.
"""

import logging
import socket
import struct
import threading

import serial
from serial.rfc2217 import IAC, PortManager

from rig.sim.board import Board
from rig.sim.devkit import ControlLines

log = logging.getLogger(__name__)
SEND_TIMEOUT = 5  # seconds


class _UartPort:
    """The attributes PortManager reads and writes on the serial port it serves."""

    def __init__(self, board: Board, lines: ControlLines):
        self._board = board
        self._lines = lines
        self.name = f"virtual:{board.id}"
        self._baudrate = board.baud
        self.bytesize = serial.EIGHTBITS
        self.parity = serial.PARITY_NONE
        self.stopbits = serial.STOPBITS_ONE
        self.xonxoff = False
        self.rtscts = False
        self.break_condition = False
        self.cts = self.dsr = self.ri = self.cd = False
        self._dtr = self._rts = False

    @property
    def baudrate(self):
        return self._baudrate

    @baudrate.setter
    def baudrate(self, value):
        self._baudrate = int(value)
        self._board.set_baud(self._baudrate)

    @property
    def dtr(self):
        return self._dtr

    @dtr.setter
    def dtr(self, value):
        self._dtr = bool(value)
        self._lines.set(dtr=self._dtr)

    @property
    def rts(self):
        return self._rts

    @rts.setter
    def rts(self, value):
        self._rts = bool(value)
        self._lines.set(rts=self._rts)

    def reset_input_buffer(self):
        pass  # host-side buffers live in the client

    def reset_output_buffer(self):
        pass


class _Connection:
    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self._lock:
            self._sock.sendall(data)


class Rfc2217Server:
    """Listens on host:port; every client sees the board's output and may type and toggle lines."""

    def __init__(self, board: Board, host: str, port: int):
        self._board = board
        self._lines = ControlLines(board)
        self._sock = socket.create_server((host, port), reuse_port=False)
        self.port = self._sock.getsockname()[1]
        self._closing = False
        threading.Thread(target=self._accept, name=f"rfc2217-{board.id}", daemon=True).start()

    def close(self) -> None:
        self._closing = True
        self._sock.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                sock, _ = self._sock.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # A client that stops reading must not stall the board's UART (and its firmware thread).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", SEND_TIMEOUT, 0))
            threading.Thread(target=self._serve, args=(sock,), name=f"rfc2217-{self._board.id}-client",
                             daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        conn = _Connection(sock)
        port = _UartPort(self._board, self._lines)
        manager = PortManager(port, conn)

        def send(data: bytes) -> None:
            try:
                # Telnet doubles IAC in data (RFC 854), as PortManager.escape does, but in one pass:
                # escape() yields byte by byte, a second of CPU per 4 MiB (a full-flash dump).
                conn.write(data.replace(IAC, IAC + IAC))
            except OSError:
                sock.shutdown(socket.SHUT_RDWR)  # the reader below sees the end and cleans up
                raise

        self._board.add_listener(send)
        try:
            while True:
                data = sock.recv(4096)
                if not data:
                    break
                payload = b"".join(manager.filter(data))
                if payload:
                    self._board.console_input(payload)
        except OSError:
            pass
        finally:
            self._board.remove_listener(send)
            sock.close()
            # Closing the port drops DTR and RTS together (HUPCL), as a USB-serial driver does.
            self._lines.set(dtr=False, rts=False)
            log.debug("board %s: rfc2217 client left", self._board.id)
