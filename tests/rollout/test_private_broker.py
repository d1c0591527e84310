"""The fleet's private mosquitto: Broker.private returns only a broker that is its own mosquitto."""

import shutil
import socket
import subprocess

import pytest

from rig.fleet import broker as broker_module
from rig.fleet.broker import Broker

pytestmark = pytest.mark.skipif(not shutil.which("mosquitto_pub") or not (
    shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")), reason="mosquitto is not installed")


def test_a_port_taken_between_probe_and_bind_is_not_taken_for_the_broker(tmp_path, monkeypatch):
    # Another process listens on the port the probe found free, before mosquitto binds it: mosquitto
    # exits on its bind error, and a connection to the port reaches the other process.
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        taken = other.getsockname()[1]
        free_port = broker_module._free_port
        ports = iter([taken])
        monkeypatch.setattr(broker_module, "_free_port", lambda: next(ports, None) or free_port())
        broker = Broker.private(tmp_path / "broker")
        try:
            assert broker.port != taken
            # and it is a broker: mosquitto_pub's MQTT connection is accepted (it exits 0 once sent)
            pub = subprocess.run(["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-q", "1",
                                  "-t", "rig/probe", "-m", "{}"], capture_output=True, text=True, timeout=10)
            assert pub.returncode == 0, pub.stderr
        finally:
            broker.stop()
