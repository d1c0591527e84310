"""Starting, finding and talking to the rollout engine process.

The engine runs in the background beside a fleet (`rig rollout start` starts it when none runs for
that database); commands reach it through the database's requests table and wait for its answer.

    eng = EngineProcess(folder, db_url, broker_url).start()
    rid = int(ask(db_url, "start", args={"release": ..., "policy": ...}))
    eng.kill()    # SIGKILL, as a crash would; start() again resumes from the database
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rig.errors import RigError
from rig.fleet.broker import _stop_pid
from rig.rollout import store

START_TIMEOUT_S = 30.0
ANSWER_TIMEOUT_S = 60.0


class EngineProcess:
    def __init__(self, folder: Path, db_url: str, broker_url: str, env: dict | None = None):
        self.folder = Path(folder)
        self.db_url = db_url
        self.broker_url = broker_url
        self.env = env
        self.proc: subprocess.Popen | None = None

    @property
    def state_file(self) -> Path:
        return self.folder / "engine.json"

    def start(self, wait: bool = True) -> "EngineProcess":
        """Start the engine; with wait=False return at once (`ready()` waits for it)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "engine.log", "ab")
        self.state_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rig.rollout.engine", "--db", self.db_url, "--broker", self.broker_url,
             "--artefacts", str(self.folder / "artefacts"), "--state", str(self.state_file)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
            env={**os.environ, **(self.env or {})})
        return self.ready() if wait else self

    def _started(self) -> subprocess.Popen:
        if self.proc is None:
            raise RigError("the rollout engine was not started")
        return self.proc

    def ready(self) -> "EngineProcess":
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.state_file.exists():
            if self._started().poll() is not None:
                tail = (self.folder / "engine.log").read_text(errors="replace").strip().splitlines()[-1:]
                raise RigError(f"the rollout engine exited at start{': ' + tail[0] if tail else ''}")
            if time.monotonic() > deadline:
                self.stop()
                raise RigError(f"the rollout engine did not come up in {START_TIMEOUT_S:g} s; "
                               f"see {self.folder / 'engine.log'}")
            time.sleep(0.05)
        return self

    @property
    def pid(self) -> int:
        return self._started().pid

    def kill(self) -> None:
        """SIGKILL: no goodbye, no last commit - a crash."""
        proc = self._started()
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def running_engine(folder: Path) -> dict | None:
    """The engine serving this folder, if its process is alive."""
    path = Path(folder) / "engine.json"
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    try:
        os.kill(state["pid"], 0)
    except ProcessLookupError:
        return None
    return state


def ensure_engine(folder: Path, db_url: str) -> None:
    """Start the engine for the fleet in `folder` unless one runs; it stays in the background."""
    from rig.fleet.control import Fleet

    if running_engine(folder) is None:
        EngineProcess(folder, db_url, Fleet.find(folder).broker).start()


def stop_engine(folder: Path) -> bool:
    state = running_engine(folder)
    if state is None:
        return False
    _stop_pid(state["pid"], timeout=10)
    (Path(folder) / "engine.json").unlink(missing_ok=True)
    return True


def ask(db_url: str, action: str, rollout_id: int | None = None, args: dict | None = None,
        timeout: float = ANSWER_TIMEOUT_S) -> str:
    """Put a request to the engine and wait for its answer (raises RigError on an error answer)."""
    db = store.open_db(db_url)
    rid = store.request(db, action, rollout_id, args)
    result = store.wait_request(db, rid, timeout)
    if result is None:
        store.cancel_request(db, rid)
        raise RigError(f"no rollout engine answered within {timeout:g} s; is one running for {db_url}? "
                       "(`rig rollout start` starts it)")
    if result.startswith("error: "):
        raise RigError(result[len("error: "):])
    return result
