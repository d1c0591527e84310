"""RigConsoleDriver.expect_line waits for whole lines, however the board's bytes trickle in."""

import os
import threading
import time
import tty

from labgrid import Target
from labgrid.resource import RawSerialPort

from rig.drivers.console import RigConsoleDriver
from rig.ota.campaign import APP_LINE


def test_a_pattern_with_alternatives_matches_only_a_whole_line():
    # An emulated core's UART sends one byte at a time; the campaign's APP_LINE has alternatives.
    master, slave = os.openpty()
    tty.setraw(slave)
    target = Target("console-lines")
    RawSerialPort(target, name=None, port=os.ttyname(slave), speed=115200)
    console = RigConsoleDriver(target, name=None)
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
