"""Power-cut triggers fire once, on what they watch, and cut through the callable they were given."""

import os
import threading
import urllib.request

import pytest

from rig.errors import RigError
from rig.ota.server import OtaServer
from rig.ota.triggers import Trigger, TriggerSpec, parse


def recorder():
    cuts = threading.Semaphore(0)
    return cuts, cuts.release


def test_fires_once_on_bytes_served_through_the_ota_server(tmp_path):
    (tmp_path / "app.bin").write_bytes(os.urandom(10_000))
    cuts, cut = recorder()
    trigger = Trigger(parse("cut@bytes:40%"), cut)
    with OtaServer(tmp_path) as server:
        server.on_bytes(lambda device, name, end: trigger.progress("bytes", end, 10_000))
        urllib.request.urlopen(server.url("app.bin", "d")).read()
    assert cuts.acquire(timeout=5)
    assert not cuts.acquire(timeout=0.2)  # once only
    served = int(trigger.fired_at.split()[1].split("/")[0])
    assert 4000 <= served < 4000 + 512


def test_watches_only_its_own_kind():
    cuts, cut = recorder()
    trigger = Trigger(parse("cut@upload:1000"), cut)
    trigger.progress("bytes", 5000, 5000)
    trigger.line("I: Swap type: test")
    assert not trigger.fired
    trigger.progress("upload", 1000, 5000)
    assert cuts.acquire(timeout=5) and trigger.fired_at == "upload 1000/5000"


def test_console_line_and_delay():
    cuts, cut = recorder()
    trigger = Trigger(parse("cut@line:Swap type: (test|perm)"), cut)
    trigger.line("I: Starting bootloader")
    assert not trigger.fired
    trigger.line("I: Swap type: test")
    assert cuts.acquire(timeout=5)
    delayed = Trigger(parse("cut@delay:0.01"), cut)
    delayed.start()
    assert cuts.acquire(timeout=5) and delayed.fired_at == "after 0.01s"


def test_specs():
    assert parse("cut@bytes:40%") == TriggerSpec("bytes", at_percent=40.0)
    assert parse("cut@upload:4096").describe() == "cut@upload:4096"
    for bad in ("cut@bytes", "zap@bytes:1", "cut@line:(", "cut@delay:soon", "cut@moon:1"):
        with pytest.raises(RigError):
            parse(bad)
