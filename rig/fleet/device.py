"""One simulated fleet device: an MQTT connection, a twin, and an update client with the boards'
state machine (download, verify, install, reboot, confirm after a health check or roll back).

A device is a few coroutines, not a board model: "flash" is the pair (running version, confirmed)
and the anti-rollback floor. What it really does is talk: it follows the job and twin protocol of
rig.fleet.protocol over its own MQTT connection and downloads its artefact from rig's OTA server
over HTTP with Range resume, checking size and SHA-256 as a device does.

`Truth` is the device's ground truth - what its flash holds and what it really did - kept apart
from everything it reports, so tests can judge what the rollout engine believes.
"""

import asyncio
import hashlib
import itertools
import json
import random
from dataclasses import asdict, dataclass, field

import aiohttp

from rig.fleet import protocol as p
from rig.fleet.mqtt import Mqtt
from rig.rollout.release import image_descriptor
from rig.variants import facts

FAULTS = {
    "boot-fail": "the new image fails to boot; the bootloader rolls back to the old one",
    "crash-loop": "the new image confirms, then crashes and reboots again and again",
    "unconfirmed": "reports success before its confirm reaches flash; the next reset rolls it back",
    "silent": "goes silent after IN_PROGRESS: no report ever again",
    "offline": "drops off the network for a while (--seconds), then reconnects",
    "slow": "downloads over a slow link (--rate bytes/s)",
    "refuse": "refuses the image: its signature does not check out",
    "swap": "the board is replaced by one of another variant (--variant) under the same name",
}


READ_CHUNK = 16 * 1024  # bytes a device takes from its download at a time
MAX_BACKOFF = 16  # an unanswered update is repeated at most this many retry_s apart


@dataclass
class Timing:
    """How long a device takes for each step; tests compress these to milliseconds."""

    install_s: float = 0.2
    boot_s: float = 0.2
    health_s: float = 0.3  # the health check before the app confirms itself
    retry_s: float = 2.0  # an unanswered job update is sent again after this, then after twice as long ... (jittered)
    progress_s: float = 5.0  # a download in progress is reported this often (the service times out silence)
    twin_poll_s: float = 600.0  # a device GETs its whole twin this often besides the patches pushed to it
    crash_every_s: float = 0.3
    crashes: int = 4  # a crash loop's length


@dataclass
class Truth:
    id: str
    variant: str
    layout: str
    running: str = "1.0.0"
    confirmed: bool = True
    floor: int = 0
    features: list[str] = field(default_factory=list)
    online: bool = False
    flags: dict = field(default_factory=dict)  # what the firmware applied: name -> value or "unsupported"
    desired_version: int = 0  # the highest desired-twin $version applied
    installs: dict = field(default_factory=dict)  # jobId -> times the image was installed
    outcomes: dict = field(default_factory=dict)  # jobId -> what happened, as the device knows it
    faults: dict = field(default_factory=dict)  # kind -> parameters
    boot_failures: int = 0
    crashes: int = 0
    reconnects: int = 0
    downloads: int = 0  # HTTP requests made for artefacts
    duplicates_ignored: int = 0  # notifications for a job it already had (QoS 1 redeliveries, re-notifies)


class Device:
    KIND = "sim"  # what the reported twin says this thing is (rig.fleet.agent's rack boards: "rack")

    def __init__(self, truth: Truth, broker: tuple[str, int], http: aiohttp.ClientSession, timing: Timing,
                 gate: asyncio.Semaphore):
        self.t = truth
        self.broker = broker
        self.http = http
        self.timing = timing
        self.gate = gate  # bounds how many devices of a process connect at once
        self.conn: Mqtt | None = None
        self._tokens = itertools.count(1)
        self._waiting: dict[str, asyncio.Future] = {}
        self._handled: set[str] = set()  # jobIds taken on (a job is delivered once)
        self._versions: dict[str, int] = {}  # jobId -> the execution's versionNumber as last accepted
        self._online = asyncio.Event()
        self._stop = asyncio.Event()
        self._back = asyncio.Event()  # set while the device may be on the network
        self._back.set()
        self._down = asyncio.Event()
        self._busy = False
        self._tasks: set[asyncio.Task] = set()
        self._desired: dict = {}
        self._connections = 0

    # -- the link
    async def run(self) -> None:
        while not self._stop.is_set():
            await self._back.wait()
            if self._stop.is_set():
                return
            self._down.clear()
            try:
                async with self.gate:
                    await self._connect()
            except Exception:  # broker gone or refusing: try again, as firmware does
                await asyncio.sleep(1.0)
                continue
            await self._down.wait()
            if self._back.is_set():
                await asyncio.sleep(0.5)  # the link broke under us: back off before reconnecting

    def _up(self) -> None:
        self._connections += 1
        if self._connections > 1:
            self.t.reconnects += 1
        self.t.online = True
        self._online.set()

    def _lost(self) -> None:
        self.t.online = False
        self._online.clear()
        self._down.set()

    async def _connect(self) -> None:
        will = (p.presence(self.t.id), b'{"online":false}')
        self.conn = Mqtt(self.t.id, self._message, clean_start=False, will=will, on_connect=self._up,
                         on_disconnect=self._lost)
        await self.conn.connect(*self.broker)
        self.conn.subscribe(p.device_topics(self.t.id))
        # presence and the reported twin are retained: a service that (re)starts learns the whole fleet
        self.conn.publish(p.presence(self.t.id), {"online": True}, retain=True)
        self.conn.publish(p.twin(self.t.id, "reported"), self._reported(), retain=True)
        self.conn.publish(p.twin(self.t.id, "get"), {"clientToken": self._token()})
        if not self._busy:
            self.conn.publish(p.start_next(self.t.id), {"clientToken": self._token()})

    def go_offline(self, seconds: float | None) -> None:
        """Lose the network (no goodbye: the broker sends the will); back after `seconds`."""
        self._back.clear()
        self._lost()
        if self.conn is not None:
            self.conn.drop()
        if seconds is not None:
            asyncio.get_running_loop().call_later(seconds, self._back.set)

    def swap(self, variant: str) -> None:
        """Another board under this name: it reports its own hardware from now on."""
        self.t.variant, self.t.layout = variant, facts(variant).default_layout
        self.t.faults["swap"] = {"variant": variant}
        self._report_twin()

    async def reboot(self) -> None:
        self.go_offline(None)
        await asyncio.sleep(self.timing.boot_s)
        self._back.set()

    def stop(self) -> None:
        self._stop.set()
        self._back.set()
        self._down.set()
        if self.conn is not None:
            self.conn.drop()
        for task in self._tasks:
            task.cancel()

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _token(self) -> str:
        return f"{self.t.id}-{next(self._tokens)}"

    def _publish(self, topic: str, payload) -> None:
        if self.conn is not None and self._online.is_set():
            self.conn.publish(topic, payload)

    # -- what the device tells the service
    def _reported(self) -> dict:
        t = self.t
        return {"firmware": {"version": t.running, "confirmed": t.confirmed, "floor": t.floor},
                "device": {"variant": t.variant, "layout": t.layout, "kind": self.KIND},
                "health": {"bootFailures": t.boot_failures, "crashes": t.crashes, "reconnects": t.reconnects},
                "flags": dict(t.flags)}

    def _report_twin(self) -> None:
        if self.conn is not None and self._online.is_set():
            self.conn.publish(p.twin(self.t.id, "reported"), self._reported(), retain=True)

    # -- messages from the service
    def _message(self, msg) -> None:
        topic, payload = msg.topic, msg.payload
        parts = p.split(topic)
        if parts is None:
            return
        _, rest = parts
        try:
            body = json.loads(payload) if payload else {}
        except ValueError:
            return
        if rest in ("jobs/notify-next", "jobs/start-next/accepted"):
            self._execution(body.get("execution"), rest)
        elif rest.endswith(("/update/accepted", "/update/rejected")):
            fut = self._waiting.pop(body.get("clientToken", ""), None)
            if fut is not None and not fut.done():
                fut.set_result((rest.endswith("accepted"), body))
        elif rest == "twin/res":
            desired = body.get("desired", {})
            self._apply_desired(desired, whole=True)
        elif rest == "twin/desired":
            self._apply_desired(body, whole=False)

    def _execution(self, ex: dict | None, where: str) -> None:
        if not ex:
            return
        job = ex.get("jobId")
        if job is None:
            return  # not a job execution: nothing to take on
        if job in self._handled:
            self.t.duplicates_ignored += 1  # a job is taken on once, however often it is announced
            return
        if where == "jobs/notify-next":
            if not self._busy and ex.get("status") in (p.QUEUED, p.IN_PROGRESS):
                self._publish(p.start_next(self.t.id), {"clientToken": self._token()})
            return
        if ex.get("status") != p.IN_PROGRESS or self._busy:
            return
        self._handled.add(job)
        self._busy = True
        self._versions[job] = ex.get("versionNumber", 1)
        self._spawn(self._run_job(ex))

    def _apply_desired(self, desired: dict, whole: bool) -> None:
        version = desired.get("$version", 0)
        if version <= self.t.desired_version:
            return  # seen already (a reconnecting device GETs the whole twin; patches may arrive late)
        if whole:
            self._desired = {k: v for k, v in desired.items() if k != "$version"}
        else:
            self._desired.update({k: v for k, v in desired.items() if k != "$version"})
        self.t.desired_version = version
        self._apply_flags()

    def _apply_flags(self) -> None:
        self.t.flags = {k: (v if k in self.t.features else p.UNSUPPORTED) for k, v in self._desired.items()}
        self._report_twin()

    async def poll_twin(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(self.timing.twin_poll_s)
            self._publish(p.twin(self.t.id, "get"), {"clientToken": self._token()})

    # -- the update client
    async def _update(self, job: str, status: str, details: dict) -> bool:
        """Report a status until the service answers; False when it says the job is over (canceled)."""
        token = self._token()
        wait = self.timing.retry_s
        while True:
            await self._online.wait()
            fut = asyncio.get_running_loop().create_future()
            self._waiting[token] = fut
            self._publish(p.update(self.t.id, job), {"status": status, "statusDetails": details,
                                                     "expectedVersion": self._versions[job], "clientToken": token})
            try:
                accepted, body = await asyncio.wait_for(fut, wait)
            except TimeoutError:
                self._waiting.pop(token, None)
                # back off, as device SDKs do: a busy service is not helped by a fleet repeating itself
                wait = min(wait * 2, self.timing.retry_s * MAX_BACKOFF) * random.uniform(0.8, 1.2)
                continue
            state = body.get("executionState", {})
            self._versions[job] = state.get("versionNumber", self._versions[job])
            if accepted:
                return True
            if state.get("status") in p.TERMINAL:
                return False
            # VersionMismatch: we now know the current version; say it again

    async def _run_job(self, ex: dict) -> None:
        job, doc = ex["jobId"], ex.get("jobDocument", {})
        t = self.t
        try:
            art = doc.get("artefact", {})
            compatible = art.get("compatible", {})
            if t.variant not in compatible.get("variants", []) or t.layout not in compatible.get("layouts", []):
                t.outcomes[job] = "rejected: not for this hardware"
                await self._update(job, p.REJECTED, {"reason": "incompatible", "variant": t.variant})
                return
            if art.get("floor", 0) < t.floor:
                t.outcomes[job] = "rejected: below floor"
                await self._update(job, p.REJECTED, {"reason": "below anti-rollback floor", "floor": t.floor})
                return
            if not await self._update(job, p.IN_PROGRESS, {"step": "downloading"}):
                t.outcomes[job] = "canceled"
                return
            if "silent" in t.faults:
                t.outcomes[job] = "silent"
                return  # the app hangs: nothing more is ever said about this job
            data = await self._download(job, art)
            if "refuse" in t.faults:
                t.outcomes[job] = "rejected: bad signature"
                await self._update(job, p.REJECTED, {"reason": "signature check failed"})
                return
            # the firmware behaves as the image it is: a build that crashes on boot, hangs, never
            # confirms or fails its health check is rolled back by the bootloader, as on a board
            desc = image_descriptor(data)
            broken_build = desc is not None and desc.fault != "none"
            old, old_floor = t.running, t.floor
            await asyncio.sleep(self.timing.install_s)
            t.installs[job] = t.installs.get(job, 0) + 1
            await self._update(job, p.IN_PROGRESS, {"step": "installed, rebooting"})
            await self.reboot()
            await self._online.wait()
            new = doc["version"]
            if "boot-fail" in t.faults or broken_build:
                t.boot_failures += 1  # the bootloader tried the image and went back to the old one
                t.outcomes[job] = "rolled back"
                self._report_twin()
                await self._update(job, p.FAILED, {"reason": "rolled back: boot failure", "version": old})
                return
            t.running, t.confirmed = new, False
            self._report_twin()
            await asyncio.sleep(self.timing.health_s)
            if "unconfirmed" in t.faults:
                # The client says success, but the confirm never reached flash: the next reset
                # (here the watchdog's) boots the old image again.
                await self._update(job, p.SUCCEEDED, {"version": new, "confirmed": True})
                await asyncio.sleep(self.timing.health_s)
                t.boot_failures += 1
                await self.reboot()
                t.running, t.confirmed, t.floor = old, True, old_floor
                t.outcomes[job] = "rolled back after reporting success"
                await self._online.wait()
                self._report_twin()
                return
            t.confirmed = True
            t.floor = max(t.floor, art.get("floor", 0))
            t.features = list(doc.get("features", []))
            t.outcomes[job] = "updated"
            if self._desired:
                self._apply_flags()
            self._report_twin()
            await self._update(job, p.SUCCEEDED, {"version": new, "confirmed": True})
            if "crash-loop" in t.faults:
                for _ in range(self.timing.crashes):
                    await asyncio.sleep(self.timing.crash_every_s)
                    t.crashes += 1
                    await self.reboot()
                    await self._online.wait()
                    self._report_twin()
        finally:
            self._busy = False

    async def _download(self, job: str, art: dict) -> bytes:
        """GET the artefact with Range resume until all of it is here and its SHA-256 matches,
        reporting progress every Timing.progress_s."""
        size, digest = art["size"], art["sha256"]
        loop = asyncio.get_running_loop()
        reported = loop.time()
        url = f"{art['url']}?device={self.t.id}"
        got = bytearray()
        rate = self.t.faults.get("slow", {}).get("rate")
        while True:
            await self._online.wait()
            headers = {"Range": f"bytes={len(got)}-"} if got else {}
            self.t.downloads += 1
            try:
                async with self.http.get(url, headers=headers) as resp:
                    if resp.status not in (200, 206):
                        raise aiohttp.ClientError(f"HTTP {resp.status}")
                    if resp.status == 200:
                        got.clear()
                    async for chunk in resp.content.iter_chunked(READ_CHUNK):
                        if not self._online.is_set():
                            raise aiohttp.ClientError("link lost")
                        got += chunk
                        if rate:
                            await asyncio.sleep(len(chunk) / rate)
                        if loop.time() - reported >= self.timing.progress_s:
                            reported = loop.time()  # a progress report: not waited for (docs/rollouts.md)
                            self._publish(p.update(self.t.id, job), {
                                "status": p.IN_PROGRESS, "statusDetails": {"step": "downloading", "received": len(got)},
                                "clientToken": self._token()})
            except (TimeoutError, aiohttp.ClientError, OSError):
                await asyncio.sleep(random.uniform(0.2, 0.6))
                continue
            if len(got) >= size:
                if len(got) == size and hashlib.sha256(got).hexdigest() == digest:
                    return bytes(got)
                got.clear()  # wrong bytes: start over, as a device that checks its image does


def truth_dict(t: Truth) -> dict:
    return asdict(t)
