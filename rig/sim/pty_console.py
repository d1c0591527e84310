"""A board's console as a pseudo-terminal, for tools that open a device path (smpclient, ser2net).

The daemon keeps the slave side open itself: with no slave open, reads on the master fail with
EIO and a poll loop would spin. Output nobody reads is dropped once the pty buffer is full, as a
UART's TX pin drops bytes nobody listens to; pyserial flushes stale input when it opens the path.
"""

import os
import select
import threading
import tty

from rig.sim.board import Board


class PtyConsole:
    def __init__(self, board: Board):
        self._board = board
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR/LF translation: a byte pipe like a UART
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._stop_r, self._stop_w = os.pipe()
        board.add_listener(self._send)
        threading.Thread(target=self._pump, name=f"pty-{board.id}", daemon=True).start()

    def close(self) -> None:
        self._board.remove_listener(self._send)
        os.write(self._stop_w, b"x")

    def _send(self, data: bytes) -> None:
        try:
            os.write(self._master, data)
        except BlockingIOError:
            pass

    def _pump(self) -> None:
        try:
            while True:
                ready, _, _ = select.select([self._master, self._stop_r], [], [])
                if self._stop_r in ready:
                    return
                try:
                    data = os.read(self._master, 4096)
                except (BlockingIOError, InterruptedError):
                    continue
                if data:
                    self._board.console_input(data)
        finally:
            for fd in (self._master, self._slave, self._stop_r, self._stop_w):
                os.close(fd)
