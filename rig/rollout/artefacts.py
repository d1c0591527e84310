"""The rollout engine's artefact server: rig.ota.server.OtaServer (HTTP, Range, resume) in a process
of its own, so ten thousand downloads at once never starve the engine's MQTT work of the GIL.

    with ArtefactServer(root, port=previous) as srv:     # the child dies with the engine (PDEATHSIG)
        srv.url("5f1c...-stm32l0.bin"); srv.stats()

The child writes its counts (the most downloads held at once, requests, bytes) to a file twice a
second; `python -m rig.rollout.artefacts ROOT HOST PORT STATS` is the child.
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

from rig.errors import RigError

PR_SET_PDEATHSIG = 1
FLEET_CHUNK = 64 * 1024


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ArtefactServer:
    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0):
        self.root, self.host = Path(root), host
        self.stats_file = self.root.parent / "artefact-server.json"
        self.proc = subprocess.Popen([sys.executable, "-m", "rig.rollout.artefacts", str(self.root), host, str(port),
                                      str(self.stats_file)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     preexec_fn=_die_with_parent)
        line = self.proc.stdout.readline() if self.proc.stdout else b""
        if not line:
            raise RigError(f"the artefact server would not start on {host}:{port}")
        self.port = int(line.split()[1])

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.port}/{quote(name)}"

    def stats(self) -> dict:
        try:
            return json.loads(self.stats_file.read_text())
        except (OSError, ValueError):
            return {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


def main(argv: list[str]) -> None:
    from rig.ota.server import OtaServer

    root, host, port, stats = Path(argv[0]), argv[1], int(argv[2]), Path(argv[3])
    try:
        server = OtaServer(root, host=host, port=port, chunk=FLEET_CHUNK)
    except OSError:
        server = OtaServer(root, host=host, port=0, chunk=FLEET_CHUNK)  # the engine's last port is taken
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with server:
        print(f"ready {server.address[1]}", flush=True)
        while not done.wait(0.5):
            with server._lock:
                served = list(server.stats.values())
                counts = {"peak_downloads": server.peak_active, "requests": sum(s.requests for s in served),
                          "bytes": sum(s.bytes_served for s in served)}
            tmp = stats.with_suffix(".tmp")
            tmp.write_text(json.dumps(counts))
            os.replace(tmp, stats)


if __name__ == "__main__":
    main(sys.argv[1:])
