"""The console as the host reads it: expect_line waits for whole lines, however the board's bytes
trickle in; drain ends on a board that never stops talking; an SMP session lent the port ends when
the board's boot line shows it restarted."""

import os
import select
import subprocess
import sys
import threading
import time
import tty

import pytest
from labgrid import Target
from labgrid.resource import NetworkSerialPort, RawSerialPort

from rig.drivers.console import RigConsoleDriver
from rig.drivers.smp import SMPDriver
from rig.errors import RigError
from rig.ota.campaign import APP_LINE


def pty_board(name: str):
    """(master fd, slave fd, target, console): a raw pty whose master end plays the board, the slave
    end the target's RawSerialPort, and the target's console driver (not yet activated)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    target = Target(name)
    RawSerialPort(target, name=None, port=os.ttyname(slave), speed=115200)
    return master, slave, target, RigConsoleDriver(target, name=None)


def test_a_pattern_with_alternatives_matches_only_a_whole_line():
    # An emulated core's UART sends one byte at a time; the campaign's APP_LINE has alternatives.
    master, slave, target, console = pty_board("console-lines")
    target.activate(console)

    def trickle():
        for byte in b"rig: alive uptime=54\r\n":
            os.write(master, bytes([byte]))
            time.sleep(0.005)

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        assert console.expect_line(APP_LINE, timeout=5).group(0) == "rig: alive uptime=54"
    finally:
        sender.join()
        target.deactivate(console)
        os.close(master)
        os.close(slave)


# A board in a boot loop, behind a raw TCP serial server: a process of its own that sends without
# a pause and stays ahead of the reader (the socket buffers hold seconds of its output).
BOOT_LOOP = """
import socket, sys
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
conn, _ = server.accept()
line = b"rst:0x1 (POWERON_RESET)\\r\\nGuru Meditation Error: Core 0 panic'ed\\r\\n"
while True:
    conn.sendall(line * 1000)
"""


def test_drain_ends_on_a_board_in_a_boot_loop():
    # A board that crashes on boot and restarts at once prints without a pause; the campaign
    # drains its console before each step (lending the port to esptool for the read-back).
    board = subprocess.Popen([sys.executable, "-c", BOOT_LOOP], stdout=subprocess.PIPE, text=True)
    target = Target("boot-loop")
    NetworkSerialPort(target, name=None, host="127.0.0.1", port=int(board.stdout.readline()), protocol="raw")
    console = RigConsoleDriver(target, name=None)
    drainer = threading.Thread(target=console.drain, daemon=True)  # a drain that never ends fails, not hangs
    try:
        target.activate(console)
        drainer.start()
        drainer.join(timeout=60)  # a liveness bound, far above DRAIN_LIMIT_S: it ends, not how fast
        assert not drainer.is_alive()
        console.expect_line("Guru Meditation Error", timeout=5)  # the loop goes on after the drain
    finally:
        board.kill()
        board.wait()
        if not drainer.is_alive():
            target.deactivate(console)


def test_an_smp_request_the_board_restarts_during_ends_at_its_boot_line():
    # The board takes the request, then loses power: it never answers, and its boot line comes.
    master, slave, target, console = pty_board("smp-restart")
    smp = SMPDriver(target, name=None, timeout=60.0)
    target.activate(console)
    stop = threading.Event()

    def board():
        while not stop.is_set():
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready and b"\n" in os.read(master, 4096):  # an SMP frame ends its line
                os.write(master, b"I: Starting bootloader\r\nrig: boot variant=stm32l0 version=1.0.0+0 "
                                 b"slot=0 reset=power-on boots=1 fault=none\r\n")

    thread = threading.Thread(target=board)
    thread.start()
    try:
        target.activate(smp)
        with pytest.raises(RigError, match="restarted before it answered"):
            smp.echo("hello")
    finally:
        stop.set()
        thread.join()
        target.deactivate(console)
        os.close(master)
        os.close(slave)
