"""MQTT 5 connections (paho-mqtt 2.x) driven by the running asyncio loop, thousands per process.

paho does the protocol; this module only feeds it the socket events: the loop's reader and
writer callbacks call paho's loop_read/loop_write, and ONE timer per process calls loop_misc on
every connection for keep-alive pings. (aiomqtt wraps paho the same way but gives each client its
own misc task and message queue: at 10,000 connections per fleet those are 10,000 wake-ups a
second doing nothing.)

    conn = Mqtt("dev-0001", on_message=handle, will=("rig/things/dev-0001/presence", b"..."))
    await conn.connect("127.0.0.1", 1883)
    conn.subscribe("rig/things/dev-0001/#")
    conn.publish("rig/things/dev-0001/jobs/start-next", {"clientToken": "1"})
"""

import asyncio
import json
import resource
import socket
import weakref
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from rig.errors import RigError

KEEPALIVE_S = 60
MISC_EVERY_S = 5.0  # how often the process's timer lets paho send pings and notice dead links
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps a device's subscriptions and queued QoS 1 messages this long

_live: "weakref.WeakSet[Mqtt]" = weakref.WeakSet()
_misc_task: asyncio.Task | None = None


def raise_open_files(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (at most the hard limit); returns
    the limit now in force. Every MQTT connection and every download is a file descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


async def _misc_forever() -> None:
    while True:
        await asyncio.sleep(MISC_EVERY_S)
        for conn in list(_live):
            if conn.client.socket() is not None:
                conn.client.loop_misc()


def encode(payload) -> bytes:
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


class Mqtt:
    """One connection. `on_message(msg)` runs on the loop for every message: paho's MQTTMessage
    (.topic, .payload, .dup, .retain)."""

    def __init__(self, client_id: str, on_message: Callable[[paho.MQTTMessage], None],
                 clean_start: bool = False, will: tuple[str, bytes] | None = None,
                 on_connect: Callable[[], None] | None = None, on_disconnect: Callable[[], None] | None = None):
        self.client_id = client_id
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(100)
        self.clean_start = clean_start
        if will:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.connected = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._on_message = on_message
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._connack: asyncio.Future | None = None
        c = self.client
        c.on_connect = self._connack_cb
        c.on_message = lambda _c, _u, msg: on_message(msg)
        c.on_disconnect = self._disconnect_cb
        c.on_socket_open = lambda _c, _u, sock: self._loop.add_reader(sock, self._read)
        c.on_socket_close = lambda _c, _u, sock: self._unwatch(sock, self._loop.remove_reader)
        c.on_socket_register_write = lambda _c, _u, sock: self._loop.add_writer(sock, self._write)
        c.on_socket_unregister_write = lambda _c, _u, sock: self._unwatch(sock, self._loop.remove_writer)

    @staticmethod
    def _unwatch(sock, remove: Callable[..., bool]) -> None:
        remove(sock)

    def _read(self):
        self.client.loop_read()

    def _write(self):
        self.client.loop_write()

    def _connack_cb(self, _c, _u, flags, reason, _props):
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(reason)
        if not reason.is_failure:
            self.connected.set()
            if self._on_connect:
                self._on_connect()  # before the messages the broker kept for this session are handed on

    def _disconnect_cb(self, _c, _u, _flags, _reason, _props):
        self.connected.clear()
        if self._on_disconnect:
            self._on_disconnect()

    async def connect(self, host: str, port: int, timeout: float = 30.0) -> None:
        global _misc_task
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0 if self.clean_start else SESSION_EXPIRY_S
        self._connack = self._loop.create_future()
        try:
            # paho connects the TCP socket synchronously (loopback or LAN: a fraction of a millisecond)
            self.client.connect(host, port, keepalive=KEEPALIVE_S, clean_start=self.clean_start, properties=props)
        except OSError as exc:
            raise RigError(f"MQTT broker mqtt://{host}:{port}: {exc.strerror or exc}") from None
        try:
            reason = await asyncio.wait_for(self._connack, timeout)
        except TimeoutError:
            self.drop()
            raise RigError(f"MQTT broker mqtt://{host}:{port} did not answer CONNECT within {timeout:g} s") from None
        if reason.is_failure:
            raise RigError(f"MQTT broker mqtt://{host}:{port} refused {self.client_id}: {reason}")
        _live.add(self)
        if _misc_task is None or _misc_task.done() or _misc_task.get_loop() is not self._loop:
            _misc_task = self._loop.create_task(_misc_forever())

    def subscribe(self, topic: str, qos: int = 1, no_local: bool = True) -> None:
        """no_local: the broker does not send this connection what it publishes itself (MQTT 5)."""
        self.client.subscribe(topic, options=SubscribeOptions(qos=qos, noLocal=no_local))

    def publish(self, topic: str, payload, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, encode(payload), qos=qos, retain=retain)

    def disconnect(self) -> None:
        """A clean goodbye: the broker drops the will message."""
        _live.discard(self)
        self.client.disconnect()

    def drop(self) -> None:
        """The link dies with no goodbye (power lost, radio gone): the broker publishes the will."""
        _live.discard(self)
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)  # paho reads EOF, closes its side and reports the disconnect
            except OSError:
                pass
        self.connected.clear()
