"""The MQTT broker (mosquitto) and the broker's message log.

`Broker.private(folder)` starts a mosquitto of our own on a free loopback port (the embedded
default) and returns once that mosquitto itself listens there; `Broker.external("mqtt://HOST:PORT")`
names one somebody else runs. Either way the
message log is kept by `mosquitto_sub` (Debian mosquitto-clients) subscribed to `#` from before the
first device connects: one line per message, `<unix time with ns> <topic> <payload>`, written by a
tool that is not rig. Tests judge rollouts from that file and from the simulator's ground truth.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rig.errors import RigError

START_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 25000  # the broker's own open-file limit is raised to this (devices + services + slack)

CONFIG = """\
# written by rig: a private broker on loopback for one fleet
listener {port} 127.0.0.1
allow_anonymous true
persistence false
# QoS 1 messages for an offline device wait for it however many there are (job notifications,
# desired-twin patches); the message log's subscriber must never lose one either.
max_queued_messages 0
max_inflight_messages 100
set_tcp_nodelay true
max_keepalive 600
log_dest file {log}
log_type error
log_type warning
log_type notice
connection_messages false
"""


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None)
    if path is None:
        raise RigError(f"{tool} is not installed: apt-get install {package} (.ci/setup installs it)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(host: str, port: int, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RigError(f"{what} is not listening on {host}:{port} after {START_TIMEOUT_S:g} s")


def _listening_inodes(port: int) -> set[str]:
    """The inodes of the sockets listening on TCP `port` of IPv4 (/proc/net/tcp: state 0A is LISTEN)."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return {row[9] for row in rows if row[3] == "0A" and int(row[1].rpartition(":")[2], 16) == port}


def _holds(pid: int, inodes: set[str]) -> bool:
    """Whether process `pid` has one of these sockets open."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # it exited
        return False
    for fd in fds:
        try:
            if os.readlink(fd) in wanted:
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def _wait_own_listener(proc: subprocess.Popen, port: int, log: Path) -> None:
    """Until `proc` itself listens on `port`. A connection would not tell: when another process
    took the port between our probe and mosquitto's bind, it succeeds - to that process - while
    mosquitto exits on its bind error."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise RigError(f"mosquitto exited at start{': ' + tail[0] if tail else ''}")
        if _holds(proc.pid, _listening_inodes(port)):
            return
        time.sleep(0.05)
    raise RigError(f"mosquitto is not listening on 127.0.0.1:{port} after {START_TIMEOUT_S:g} s")


def parse_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise RigError(f"broker {url!r}: give it as mqtt://HOST:PORT")
    return parts.hostname, parts.port or 1883


@dataclass
class Broker:
    host: str
    port: int
    pid: int | None = None  # ours to stop, when private

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @classmethod
    def external(cls, url: str) -> "Broker":
        host, port = parse_url(url)
        _wait_listening(host, port, f"broker {url}")
        return cls(host, port)

    @classmethod
    def private(cls, folder: Path) -> "Broker":
        exe = _need("mosquitto", "mosquitto")
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a free port can be taken between our probe and mosquitto's bind
            port = _free_port()
            conf = folder / "mosquitto.conf"
            log = folder / "mosquitto.log"
            conf.write_text(CONFIG.format(port=port, log=log))
            proc = subprocess.Popen([exe, "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=_raise_nofile)
            try:
                _wait_own_listener(proc, port, log)
                return cls("127.0.0.1", port, proc.pid)
            except RigError:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        raise RigError(f"mosquitto would not start; see {folder / 'mosquitto.log'}")

    def stop(self) -> None:
        if self.pid is not None:
            _stop_pid(self.pid)
            self.pid = None


def _raise_nofile() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = MAX_CONNECTIONS if hard == resource.RLIM_INFINITY else min(MAX_CONNECTIONS, hard)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _stop_pid(pid: int, timeout: float = 5.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child: poll for it
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            done = 0
        if done:
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Recorder:
    """The broker's message log: mosquitto_sub on `#`, one line per message, flushed as it goes."""

    def __init__(self, broker: Broker, path: Path):
        self.path = Path(path)
        exe = _need("mosquitto_sub", "mosquitto-clients")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(self.path, "ab")
        self.proc = subprocess.Popen(
            [exe, "-h", broker.host, "-p", str(broker.port), "-V", "mqttv5", "-q", "1", "-t", "#",
             "-i", f"rig-recorder-{os.getpid()}-{time.monotonic_ns()}", "-F", "%U %t %p"],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid
        # mosquitto_sub subscribes right after it connects; a probe message proves the log is live
        self._wait_live(broker)

    def _wait_live(self, broker: Broker) -> None:
        pub = _need("mosquitto_pub", "mosquitto-clients")
        probe = f"rig/recorder/{self.pid}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RigError("mosquitto_sub (the message log) exited at start")
            subprocess.run([pub, "-h", broker.host, "-p", str(broker.port), "-q", "1", "-t", probe, "-m", "{}"],
                           capture_output=True, timeout=10)
            time.sleep(0.05)
            if probe.encode() in self.path.read_bytes()[-4096:]:
                return
        raise RigError(f"the message log {self.path} stayed empty: is the broker {broker.url} working?")

    def stop(self) -> None:
        _stop_pid(self.pid)
        self._out.close()


@dataclass(frozen=True)
class Message:
    at: float  # unix time the log received it
    topic: str
    payload: dict | None  # JSON payloads; None for anything else

    @property
    def thing(self) -> str | None:
        parts = self.topic.split("/")
        return parts[2] if len(parts) > 2 and parts[:2] == ["rig", "things"] else None


def read_log(path: Path) -> list[Message]:
    """Every message in a log written by Recorder, in the order the broker sent them."""
    out = []
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            at, _, rest = line.partition(" ")
            topic, _, body = rest.partition(" ")
            try:
                payload = json.loads(body) if body else None
            except ValueError:
                payload = None
            try:
                out.append(Message(float(at), topic, payload))
            except ValueError:
                continue  # a line cut short by a kill
    return out
