"""The rollout engine: the fleet's jobs and twin service over MQTT, and the staged rollouts it runs.

One process, one MQTT connection (a persistent session: what devices send while the engine is
down waits for it at the broker), one OTA server for the artefacts. It answers devices (start-next,
job updates, twin GETs), keeps the registry of things from their reported twins, and on every tick
decides per rollout and variant track: time out silent devices, judge the current wave, advance or
halt it, and queue the next devices within the rate limit. Requests from the command line (pause,
resume, abort, rollback, flags) arrive through the database's requests table.

Each decision is committed in one transaction with the state it changes before anything it causes
is published (rig.rollout.store). On start the engine loads everything from the database and
announces every queued or started execution again; devices take a job once, by jobId, so a
restarted engine neither skips nor duplicates a delivery.

    python -m rig.rollout.engine --db URL --broker mqtt://H:P --artefacts DIR [--state FILE]
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter, deque
from pathlib import Path

from sqlalchemy import bindparam, insert, select, update

from rig.errors import RigError
from rig.fleet import protocol as p
from rig.fleet.broker import parse_url
from rig.fleet.mqtt import Mqtt
from rig.rollout import cohorts, gates
from rig.rollout.artefacts import ArtefactServer
from rig.rollout.release import Policy, Release, load_release
from rig.rollout.store import (
    EXECUTION_COLUMNS,
    PLANNED,
    STUCK,
    add_event,
    executions,
    get_setting,
    open_db,
    put_setting,
    requests,
    rollouts,
    things,
    tracks,
)

BATCH_S = 0.02  # incoming messages are handled in batches this far apart: one commit per batch
CLIENT_ID = "rig-rollout-engine"
RATE_MARGIN = 1.1
SETTLE_QUIET_S = 0.3  # at start, the retained twins have all arrived once none came for this long ...
SETTLE_MAX_S = 30.0  # ... or after this long
# Test-only defects (docs/rollouts.md): each is a bug a fleet backend could ship with.
BROKEN = {
    "no-variant-check": "offers a track's artefact to any device in the track, whatever hardware it reports now",
}


class Engine:
    def __init__(self, db_url: str, broker_url: str, artefacts: Path, ota_host: str = "127.0.0.1",
                 broken: frozenset[str] = frozenset()):
        self.db = open_db(db_url)
        self.broker = parse_url(broker_url)
        self.artefacts = Path(artefacts)
        self.artefacts.mkdir(parents=True, exist_ok=True)
        self.ota_host = ota_host
        self._ota: ArtefactServer | None = None
        self.broken = broken
        self.things: dict[str, dict] = {}
        self.rollouts: dict[int, dict] = {}
        self.tracks: dict[tuple[int, str], dict] = {}
        self.execs: dict[tuple[str, str], dict] = {}
        self.by_thing: dict[str, list[tuple[str, str]]] = {}
        self.by_track: dict[tuple[int, str], list[tuple[str, str]]] = {}
        self.notified: dict[int, deque] = {}  # rollout -> times devices were queued (the rate limit's window)
        self.successes: dict[int, int] = {}
        self._inbox: list[tuple[str, bytes]] = []
        self._dirty_things: set[str] = set()
        self._new_things: set[str] = set()
        self._dirty_execs: set[tuple[str, str]] = set()
        self._new_execs: set[tuple[str, str]] = set()
        self._dirty_tracks: set[tuple[int, str]] = set()
        self._dirty_rollouts: set[int] = set()
        self._events: list[tuple] = []
        self._out: list[tuple[str, object]] = []
        self._next_tick = 0.0
        self._retained_at = 0.0
        self._conn: Mqtt | None = None

    # -- loading
    def load(self) -> None:
        with self.db.connect() as c:
            for row in c.execute(select(things)).mappings():
                self.things[row["id"]] = dict(row)
            for row in c.execute(select(rollouts)).mappings():
                self._add_rollout(dict(row))
            for row in c.execute(select(tracks)).mappings():
                self.tracks[(row["rollout_id"], row["variant"])] = dict(row)
            for row in c.execute(select(executions)).mappings():
                self._index(dict(row))
        for ex in self.execs.values():
            if ex["queued_at"] is not None:
                self.notified.setdefault(ex["rollout_id"], deque()).append(ex["queued_at"])
            if ex["status"] == p.SUCCEEDED:
                self.successes[ex["rollout_id"]] = self.successes.get(ex["rollout_id"], 0) + 1
        for q in self.notified.values():
            q_sorted = sorted(q)
            q.clear()
            q.extend(q_sorted)

    def _add_rollout(self, row: dict) -> None:
        row["rel"] = Release.from_dict(row["release"])
        row["pol"] = Policy.from_dict(row["policy"])
        self.rollouts[row["id"]] = row

    def _index(self, ex: dict) -> None:
        key = (ex["job_id"], ex["thing"])
        self.execs[key] = ex
        self.by_thing.setdefault(ex["thing"], []).append(key)
        self.by_track.setdefault((ex["rollout_id"], ex["variant"]), []).append(key)

    @property
    def ota(self) -> ArtefactServer:
        """The artefact server, while run() runs."""
        if self._ota is None:
            raise RigError("the rollout engine is not running: no artefact server")
        return self._ota

    @property
    def conn(self) -> Mqtt:
        """The MQTT connection, while run() runs."""
        if self._conn is None:
            raise RigError("the rollout engine is not running: no MQTT connection")
        return self._conn

    # -- the loop
    async def run(self, stop: asyncio.Event, ready=None) -> None:
        self.load()
        # the same port as before a restart, so downloads in flight resume against the same URLs
        self._ota = ArtefactServer(self.artefacts, self.ota_host, int(get_setting(self.db, "ota_port") or 0))
        put_setting(self.db, "ota_port", str(self.ota.port))
        try:
            self._conn = Mqtt(CLIENT_ID, self._message, clean_start=False)
            await self.conn.connect(*self.broker)
            for topic in p.SERVICE_TOPICS:
                self.conn.subscribe(topic, no_local=False)
            await self._settle()
            self._announce_all()
            self._flush()
            if ready:
                ready(self)
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), BATCH_S)
                except TimeoutError:
                    pass
                self._drain()
                now = time.time()
                if now >= self._next_tick:
                    self._next_tick = now + min((r["pol"].poll_s for r in self._active()), default=0.5)
                    self._requests()
                    self._tick(now)
                self._flush()
        finally:
            self.ota.close()
            if self._conn is not None:
                self._conn.disconnect()

    async def _settle(self) -> None:
        """Take in the retained twins and presences (the whole fleet) before deciding anything: the
        broker sends them right after the subscriptions, flagged retained."""
        start = self._retained_at = time.monotonic()
        while time.monotonic() - self._retained_at < SETTLE_QUIET_S and time.monotonic() - start < SETTLE_MAX_S:
            await asyncio.sleep(BATCH_S)
            self._drain()
        self._flush()

    def _active(self):
        return [r for r in self.rollouts.values() if r["state"] in ("running", "paused")]

    def _message(self, msg) -> None:
        self._inbox.append((msg.topic, msg.payload))
        if msg.retain:
            self._retained_at = time.monotonic()

    def _drain(self) -> None:
        batch, self._inbox = self._inbox, []
        now = time.time()
        for topic, payload in batch:
            parts = p.split(topic)
            if parts is None:
                continue
            thing, rest = parts
            try:
                body = json.loads(payload) if payload else {}
            except ValueError:
                continue
            if not isinstance(body, dict):
                continue
            if rest == "jobs/start-next":
                self._start_next(thing, body, now)
            elif rest.startswith("jobs/") and rest.endswith("/update"):
                self._update(thing, rest[len("jobs/"):-len("/update")], body, now)
            elif rest == "twin/reported":
                self._reported(thing, body, now)
            elif rest == "twin/get":
                t = self.things.get(thing)
                desired = dict((t or {}).get("desired") or {})
                desired["$version"] = (t or {}).get("desired_version", 0)
                self._publish(p.twin(thing, "res"), {"clientToken": body.get("clientToken"), "desired": desired})
            elif rest == "presence" and thing in self.things:
                self.things[thing]["online"] = int(bool(body.get("online")))
                self.things[thing]["last_seen"] = now
                self._dirty_things.add(thing)

    # -- devices
    def _reported(self, thing: str, body: dict, now: float) -> None:
        dev, fw, health = body.get("device", {}), body.get("firmware", {}), body.get("health", {})
        t = self.things.get(thing)
        if t is None:
            if not dev.get("variant"):
                return
            t = {"id": thing, "desired": {}, "desired_version": 0, "first_seen": now, "online": 1}
            self.things[thing] = t
            self._new_things.add(thing)
        if dev:
            t.update(variant=dev.get("variant"), layout=dev.get("layout"), kind=dev.get("kind", "sim"))
        if fw:
            t.update(version=fw.get("version"), confirmed=int(bool(fw.get("confirmed"))), floor=fw.get("floor", 0))
        if health:
            t.update(boot_failures=health.get("bootFailures", 0), crashes=health.get("crashes", 0),
                     reconnects=health.get("reconnects", 0))
        if "flags" in body:
            t["flags"] = body["flags"]
        t["last_seen"] = now
        t["online"] = 1
        self._dirty_things.add(thing)
        for key in self.by_thing.get(thing, []):
            ex = self.execs[key]
            r = self.rollouts[ex["rollout_id"]]
            if ex["status"] == p.SUCCEEDED and not ex["rolled_back"] and t.get("confirmed") \
                    and t.get("version") == ex["from_version"] != r["version"]:
                ex["rolled_back"] = 1
                self._dirty_execs.add(key)
        if thing in self._new_things:
            self._late_join(thing, now)

    def _late_join(self, thing: str, now: float) -> None:
        """A device seen for the first time while rollouts run gets the current wave's decision."""
        t = self.things[thing]
        for r in self._active():
            if r["kind"] != "release":
                continue
            tr = self.tracks.get((r["id"], t["variant"]))
            job = _job_id(r, t["variant"])
            if tr is None or (job, thing) in self.execs:
                continue
            wave = cohorts.CANARY if t.get("kind") == "rack" else cohorts.place(thing, r["pol"].seed, tr["boundaries"])
            ex = self._new_execution(r, t, wave, PLANNED)
            self._index(ex)
            self._new_execs.add((job, thing))

    def _new_execution(self, r: dict, t: dict, wave: int, status: str) -> dict:
        return {c: None for c in EXECUTION_COLUMNS} | {
            "job_id": _job_id(r, t["variant"]), "thing": t["id"], "rollout_id": r["id"], "variant": t["variant"],
            "wave": wave, "status": status, "version_number": 0, "rolled_back": 0, "details": {}}

    def _compatible(self, ex: dict, r: dict) -> bool:
        """The hard check: the artefact's variant and layout against what the device reports NOW."""
        if "no-variant-check" in self.broken:
            return True
        t = self.things.get(ex["thing"], {})
        art = r["rel"].artefacts.get(ex["variant"])
        return art is not None and t.get("variant") == art.variant and t.get("layout") in art.layouts

    def _refuse(self, ex: dict, r: dict, now: float) -> None:
        t = self.things.get(ex["thing"], {})
        ex.update(status=p.REJECTED, updated_at=now, details={"reason": "server: the artefact does not fit the "
                                                                        "device's hardware"})
        self._dirty_execs.add((ex["job_id"], ex["thing"]))
        self._event(r["id"], "refused", f"{ex['thing']}: {ex['variant']} artefact not offered: the device reports "
                    f"{t.get('variant')} {t.get('layout')}", ex["variant"], ex["wave"])

    def _offerable(self, ex: dict) -> bool:
        r = self.rollouts[ex["rollout_id"]]
        if ex["status"] == p.IN_PROGRESS:
            return True
        tr = self.tracks.get((r["id"], ex["variant"]))
        # a queued device that comes late still gets its job once the rollout is done or another
        # track halted; not while paused, not after an abort, not in a halted track
        return (ex["status"] == p.QUEUED and r["state"] in ("running", "done", "halted") and tr is not None
                and tr["state"] != "halted")

    def _start_next(self, thing: str, body: dict, now: float) -> None:
        reply = {"clientToken": body.get("clientToken"), "timestamp": int(now)}
        keys = [k for k in self.by_thing.get(thing, []) if self._offerable(self.execs[k])]
        keys.sort(key=lambda k: (self.execs[k]["status"] != p.IN_PROGRESS, self.execs[k]["queued_at"] or 0))
        for key in keys:
            ex = self.execs[key]
            r = self.rollouts[ex["rollout_id"]]
            if ex["status"] == p.QUEUED:
                if not self._compatible(ex, r):
                    self._refuse(ex, r, now)
                    continue
                t = self.things.get(thing, {})
                ex.update(status=p.IN_PROGRESS, started_at=now, updated_at=now,
                          version_number=ex["version_number"] + 1, from_version=t.get("version"),
                          crashes_at_start=t.get("crashes") or 0)
                self._dirty_execs.add(key)
            reply["execution"] = self._execution(ex, r)
            break
        self._publish(p.thing_topic(thing, "jobs/start-next/accepted"), reply)

    def _update(self, thing: str, job: str, body: dict, now: float) -> None:
        key = (job, thing)
        ex = self.execs.get(key)
        token = body.get("clientToken")
        topic = p.thing_topic(thing, f"jobs/{job}/update")
        if ex is None:
            self._publish(topic + "/rejected", {"clientToken": token, "code": "ResourceNotFound",
                                                "message": f"no execution of {job} for {thing}"})
            return
        if ("expectedVersion" not in body and body.get("status") == p.IN_PROGRESS == ex["status"]
                and "received" in (body.get("statusDetails") or {})):
            # a progress report: it only proves the device is alive (the progress timeout); the
            # execution's version stays, nothing is answered
            ex.update(updated_at=now, details=body["statusDetails"])
            self._dirty_execs.add(key)
            return
        state = {"status": ex["status"], "versionNumber": ex["version_number"]}
        if token is not None and token == ex["client_token"]:  # a retry of what we accepted already
            self._publish(topic + "/accepted", {"clientToken": token, "executionState": state})
            return
        status = body.get("status")
        problem = None
        if ex["status"] in p.TERMINAL or ex["status"] in (PLANNED, STUCK):
            problem = ("TerminalStateReached", f"the execution is {ex['status']}")
        elif body.get("expectedVersion") != ex["version_number"]:
            problem = ("VersionMismatch", f"expectedVersion {body.get('expectedVersion')}, "
                                          f"the execution is at {ex['version_number']}")
        elif status not in p.DEVICE_STATUSES:
            problem = ("InvalidRequest", f"status {status!r}: one of {', '.join(p.DEVICE_STATUSES)}")
        if problem:
            self._publish(topic + "/rejected", {"clientToken": token, "code": problem[0], "message": problem[1],
                                                "executionState": state})
            return
        ex.update(status=status, details=body.get("statusDetails") or {}, updated_at=now, client_token=token,
                  version_number=ex["version_number"] + 1)
        if status == p.SUCCEEDED:
            ex["succeeded_at"] = now
            self.successes[ex["rollout_id"]] = self.successes.get(ex["rollout_id"], 0) + 1
        self._dirty_execs.add(key)
        self._publish(topic + "/accepted", {"clientToken": token, "executionState": {
            "status": status, "versionNumber": ex["version_number"]}})

    def _execution(self, ex: dict, r: dict) -> dict:
        return {"jobId": ex["job_id"], "thingName": ex["thing"], "status": ex["status"],
                "queuedAt": int(ex["queued_at"] or 0), "startedAt": int(ex["started_at"] or 0) or None,
                "versionNumber": ex["version_number"], "executionNumber": 1,
                "jobDocument": self._document(r, ex["variant"])}

    def _document(self, r: dict, variant: str) -> dict:
        art = r["rel"].artefacts[variant]
        return {"operation": "rig-ota", "rollout": r["id"], "version": r["version"],
                "features": list(art.features),
                "artefact": {"kind": art.kind, "from": art.from_version, "url": self.ota.url(art.name),
                             "size": art.size, "sha256": art.sha256, "floor": art.floor,
                             "compatible": {"variants": [art.variant], "layouts": list(art.layouts)}}}

    # -- decisions
    def _tick(self, now: float) -> None:
        for r in self._active():
            pol: Policy = r["pol"]
            for variant in sorted(r["rel"].artefacts):
                tr = self.tracks.get((r["id"], variant))
                if tr is None:
                    continue
                self._timeouts(r, variant, now)
                if tr["state"] == "running" and r["state"] == "running":
                    self._gate(r, tr, variant, now)
            states = {tr["state"] for (rid, _), tr in self.tracks.items() if rid == r["id"]}
            undelivered = any(self.execs[k]["status"] == PLANNED for (rid, v), keys in self.by_track.items()
                              if rid == r["id"] and self.tracks[(rid, v)]["state"] == "done" for k in keys)
            if r["state"] == "running" and states and "running" not in states and not undelivered:
                r["state"] = "done" if states == {"done"} else "halted"
                self._dirty_rollouts.add(r["id"])
                self._event(r["id"], r["state"], f"rollout {r['id']} ({r['version']}) {r['state']}: "
                            + ", ".join(f"{v} {tr['state']}" for (rid, v), tr in sorted(self.tracks.items())
                                        if rid == r["id"]))
            if r["state"] == "running":
                self._deliver(r, pol, now)

    def _timeouts(self, r: dict, variant: str, now: float) -> None:
        g = r["pol"].gates_for(variant)
        late = [k for k in self.by_track.get((r["id"], variant), []) if self.execs[k]["status"] == p.IN_PROGRESS
                and now - self.execs[k]["updated_at"] > g.progress_timeout_s]
        for key in late:
            ex = self.execs[key]
            ex.update(status=p.TIMED_OUT, updated_at=now, version_number=ex["version_number"] + 1)
            self._dirty_execs.add(key)
            # AWS IoT Jobs tells a device when its pending list changes (jobs/notify)
            self._publish(p.thing_topic(key[1], "jobs/notify"), {"timestamp": int(now), "timedOut": key[0],
                                                                 "jobs": {}})
        if late:
            self._event(r["id"], "timed-out", f"{variant}: {len(late)} device(s) silent for "
                        f"{g.progress_timeout_s:g} s after IN_PROGRESS: TIMED_OUT", variant,
                        None, {"things": sorted(k[1] for k in late)})

    def _gate(self, r: dict, tr: dict, variant: str, now: float) -> None:
        g = r["pol"].gates_for(variant)
        counts = gates.Counts()
        for key in self.by_track.get((r["id"], variant), []):
            ex = self.execs[key]
            if ex["wave"] == tr["wave"]:
                counts.add(gates.judge(ex, self.things.get(ex["thing"]), r["version"], g, now))
        action, why = gates.decide(counts, g, now - tr["wave_started_at"])
        if action is None or (action == "halt" and not r["pol"].halts):
            if action == "halt" or (now - tr["wave_started_at"] >= g.wave_deadline_s):
                action = "advance"  # a rollback job reports its gates but never halts
            else:
                return
        label = _wave_name(tr["wave"])
        data = counts.__dict__ | {"error_threshold": g.error_threshold, "success_threshold": g.success_threshold,
                                  "min_judged": g.min_judged}
        if action == "halt":
            tr["state"] = "halted"
            self._event(r["id"], "halt", f"{variant} {label} halted: {why}", variant, tr["wave"], data)
        elif tr["wave"] + 1 >= len(r["pol"].waves):
            tr["state"] = "done"
            self._event(r["id"], "track-done", f"{variant} {label} passed, track done: {why}", variant, tr["wave"],
                        data)
        else:
            self._event(r["id"], "advance", f"{variant} {label} passed: {why}", variant, tr["wave"], data)
            tr["wave"] += 1
            tr["wave_started_at"] = now
        self._dirty_tracks.add((r["id"], variant))

    def _deliver(self, r: dict, pol: Policy, now: float) -> None:
        ready = []
        for variant in sorted(r["rel"].artefacts):
            tr = self.tracks.get((r["id"], variant))
            if tr is None or tr["state"] == "halted":
                continue  # a done track still delivers what its last decision let through
            ready += [k for k in self.by_track.get((r["id"], variant), [])
                      if self.execs[k]["status"] == PLANNED and self.execs[k]["wave"] <= tr["wave"]]
        if not ready:
            return
        window = self.notified.setdefault(r["id"], deque())
        limit = pol.rate.now(self.successes.get(r["id"], 0))
        if limit:
            # the window is kept 10 % longer than the minute: notifications reach devices (and any
            # observer) a little after they are sent, and none may bunch up past the limit there
            while window and window[0] <= now - pol.rate.minute_s * RATE_MARGIN:
                window.popleft()
            budget = max(0, limit - len(window))
        else:
            budget = len(ready)
        ready.sort(key=lambda k: (self.execs[k]["wave"], cohorts.rank(pol.seed, k[1])))
        for key in ready[:budget]:
            ex = self.execs[key]
            if not self._compatible(ex, r):
                self._refuse(ex, r, now)
                continue
            ex.update(status=p.QUEUED, queued_at=now, updated_at=now)
            self._dirty_execs.add(key)
            window.append(now)
            self._announce(ex, r)

    def _announce(self, ex: dict, r: dict) -> None:
        """notify-next with the execution - never to a device whose hardware it does not fit."""
        if ex["status"] == p.QUEUED and not self._compatible(ex, r):
            return  # start-next refuses it for good; nothing about it goes on the wire
        # timestamp: epoch seconds as AWS IoT Jobs gives it, to the millisecond (the rate limit is
        # judged by when the service sent each notification, not by when an observer got it)
        self._publish(p.notify_next(ex["thing"]), {"timestamp": round(time.time(), 3),
                                                   "execution": self._execution(ex, r)})

    def _announce_all(self) -> None:
        """After a (re)start: every execution a device may be waiting for is announced again. A queued
        one counts in the rate limit's window from now on: the engine may have been stopped between
        committing it and sending its notification, so this may be the first one its device gets."""
        again: dict[int, list[float]] = {}  # rollout -> when its re-announced queued jobs were queued
        for ex in self.execs.values():
            if ex["status"] in (p.QUEUED, p.IN_PROGRESS) and self._offerable(ex):
                if ex["status"] == p.QUEUED:
                    again.setdefault(ex["rollout_id"], []).append(ex["queued_at"])
                self._announce(ex, self.rollouts[ex["rollout_id"]])
        now = time.time()
        for rid, queued in again.items():  # one rebuild per rollout: a fleet restarts with thousands queued
            kept = Counter(self.notified.get(rid, ())) - Counter(queued)
            self.notified[rid] = deque(sorted(kept.elements()) + [now] * len(queued))

    # -- requests from the command line
    def _requests(self) -> None:
        with self.db.connect() as c:
            pending = [dict(r) for r in c.execute(select(requests).where(requests.c.done_at.is_(None))
                                                  .order_by(requests.c.id)).mappings()]
        for req in pending:
            self._flush()  # each request is a decision of its own: commit what came before
            try:
                result = getattr(self, f"_do_{req['action']}")(req)
            except RigError as exc:
                result = f"error: {exc}"
            with self.db.begin() as c:
                self._write(c)
                c.execute(update(requests).where(requests.c.id == req["id"]).values(done_at=time.time(),
                                                                                    result=result))
            self._publish_out()

    def _rollout(self, req) -> dict:
        r = self.rollouts.get(req["rollout_id"])
        if r is None:
            raise RigError(f"no rollout {req['rollout_id']}")
        return r

    def _do_start(self, req) -> str:
        args = req["args"]
        rel = Release.from_dict(args["release"])
        pol = Policy.from_dict(args["policy"])
        return str(self._create(rel, pol, kind=args.get("kind", "release"), parent=args.get("parent")))

    def _create(self, rel: Release, pol: Policy, kind: str, parent: int | None = None,
                targets: dict[str, str] | None = None) -> int:
        for art in rel.artefacts.values():
            dest = self.artefacts / art.name
            if not dest.exists():
                tmp = dest.with_suffix(".tmp")
                tmp.write_bytes(Path(art.path).read_bytes())
                os.replace(tmp, dest)
        now = time.time()
        with self.db.begin() as c:
            rid = c.execute(insert(rollouts).values(kind=kind, parent=parent, version=rel.version,
                                                    release=rel.to_dict(), policy=pol.to_dict(), state="running",
                                                    created_at=now)).inserted_primary_key[0]
        row = {"id": rid, "kind": kind, "parent": parent, "version": rel.version, "release": rel.to_dict(),
               "policy": pol.to_dict(), "state": "running", "created_at": now}
        self._add_rollout(row)
        r = self.rollouts[rid]
        planned = 0
        for variant in sorted(rel.artefacts):
            members = [t for t in self.things.values() if t["variant"] == variant
                       and (targets is None or t["id"] in targets)]
            waves, boundaries = cohorts.plan([(t["id"], t.get("kind") == "rack") for t in members], pol.seed,
                                             list(pol.waves))
            self.tracks[(rid, variant)] = {"rollout_id": rid, "variant": variant, "wave": 0, "state": "running",
                                           "wave_started_at": now, "boundaries": boundaries}
            self._dirty_tracks.add((rid, variant))
            for t in members:
                status = PLANNED
                ex = self._new_execution(r, t, waves[t["id"]], status)
                if targets is not None and targets[t["id"]] == STUCK:
                    ex.update(status=STUCK, details={"reason": f"floor {t.get('floor')} above the release's "
                                                               f"{rel.artefacts[variant].floor}"})
                self._index(ex)
                self._new_execs.add((ex["job_id"], ex["thing"]))
                planned += 1
        self._event(rid, "start", f"{kind} {rid} of {rel.version} started: {planned} devices in "
                    f"{len(pol.waves)} waves per variant track ({', '.join(sorted(rel.artefacts))})")
        return rid

    def _do_pause(self, req) -> str:
        r = self._rollout(req)
        if r["state"] != "running":
            raise RigError(f"rollout {r['id']} is {r['state']}, not running")
        r["state"] = "paused"
        self._dirty_rollouts.add(r["id"])
        self._event(r["id"], "pause", f"rollout {r['id']} paused: nothing new is delivered; devices in flight finish")
        return "paused"

    def _do_resume(self, req) -> str:
        r = self._rollout(req)
        if r["state"] != "paused":
            raise RigError(f"rollout {r['id']} is {r['state']}, not paused")
        r["state"] = "running"
        self._dirty_rollouts.add(r["id"])
        self._event(r["id"], "resume", f"rollout {r['id']} resumed")
        for key in self.execs:
            ex = self.execs[key]
            if ex["rollout_id"] == r["id"] and ex["status"] == p.QUEUED and self._offerable(ex):
                self._announce(ex, r)
        return "running"

    def _do_abort(self, req) -> str:
        r = self._rollout(req)
        if r["state"] not in ("running", "paused", "halted"):
            raise RigError(f"rollout {r['id']} is {r['state']}: nothing to abort")
        now = time.time()
        canceled, in_flight = [], []
        for key, ex in self.execs.items():
            if ex["rollout_id"] != r["id"]:
                continue
            if ex["status"] in (PLANNED, p.QUEUED):
                if ex["status"] == p.QUEUED:
                    self._publish(p.notify_next(ex["thing"]), {"timestamp": int(now)})  # no next job any more
                ex.update(status=p.CANCELED, updated_at=now)
                self._dirty_execs.add(key)
                canceled.append(ex["thing"])
            elif ex["status"] == p.IN_PROGRESS:
                in_flight.append(ex["thing"])
        r["state"] = "aborted"
        self._dirty_rollouts.add(r["id"])
        self._event(r["id"], "abort", f"rollout {r['id']} aborted: {len(canceled)} queued job(s) canceled, "
                    f"{len(in_flight)} in flight left to finish (their outcome is reported as they end)",
                    data={"canceled": len(canceled), "in_flight": sorted(in_flight)})
        return f"aborted: {len(canceled)} canceled, {len(in_flight)} in flight"

    def _do_rollback(self, req) -> str:
        r = self._rollout(req)
        to = req["args"].get("to") or r["rel"].rollback
        if not to:
            raise RigError(f"rollout {r['id']}: its release names no rollback: release; give --to RELEASE.yaml")
        prev = load_release(to)
        if r["state"] in ("running", "paused", "halted"):
            self._do_abort(req)
        targets = {}
        for key in [k for k in self.execs if self.execs[k]["rollout_id"] == r["id"]]:
            ex = self.execs[key]
            t = self.things.get(ex["thing"], {})
            art = prev.artefacts.get(ex["variant"])
            if art is None or t.get("version") != r["version"]:
                continue  # did not install the bad release (or already runs something else)
            targets[t["id"]] = STUCK if (t.get("floor") or 0) > art.floor else PLANNED
        pol = r["pol"]
        pol = Policy(pol.seed, (100.0,), pol.gates, pol.per_variant, pol.rate, pol.poll_s, halts=False)
        rid = self._create(prev, pol, kind="rollback", parent=r["id"], targets=targets)
        stuck = sorted(t for t, s in targets.items() if s == STUCK)
        self._event(rid, "rollback", f"rollback {rid} of rollout {r['id']} to {prev.version}: "
                    f"{len(targets) - len(stuck)} device(s) to go back, {len(stuck)} stuck above their floor",
                    data={"stuck": stuck})
        return str(rid)

    def _do_stats(self, req) -> str:
        """The artefact server's counts (for the benchmark): downloads held at once at most, requests, bytes."""
        return json.dumps(self.ota.stats())

    def _do_flag(self, req) -> str:
        args = req["args"]
        name, value = args["name"], args["value"]
        chosen = self._select(args.get("wave"), args.get("variant"), args.get("rollout"))
        for thing in chosen:
            t = self.things[thing]
            t["desired"] = dict(t.get("desired") or {}) | {name: value}
            t["desired_version"] = (t.get("desired_version") or 0) + 1
            self._dirty_things.add(thing)
            self._publish(p.twin(thing, "desired"), {name: value, "$version": t["desired_version"]})
        self._event(None, "flag", f"flag {name}={value!r} desired on {len(chosen)} device(s)",
                    args.get("variant"), args.get("wave"))
        return str(len(chosen))

    def _select(self, wave: int | None, variant: str | None, rollout: int | None) -> list[str]:
        if wave is None:
            return sorted(t for t, row in self.things.items() if variant is None or row["variant"] == variant)
        releases = [r for r in self.rollouts.values() if r["kind"] == "release"]
        r = self.rollouts.get(rollout) if rollout else (releases[-1] if releases else None)
        if r is None:
            raise RigError("--wave needs a rollout: none has been started")
        return sorted(k[1] for k, ex in self.execs.items() if ex["rollout_id"] == r["id"] and ex["wave"] == wave
                      and (variant is None or ex["variant"] == variant))

    # -- persistence and publishing
    def _event(self, rollout_id, kind, message, variant=None, wave=None, data=None) -> None:
        self._events.append((rollout_id, kind, message, variant, wave, data))

    def _publish(self, topic: str, payload) -> None:
        self._out.append((topic, payload))

    def _write(self, c) -> None:
        if self._new_things:
            c.execute(insert(things), [_thing_row(self.things[t]) for t in sorted(self._new_things)])
        dirty = sorted(self._dirty_things - self._new_things)
        if dirty:  # one statement, many rows: a wave of thousands is one round of executemany
            c.execute(_UPDATE_THING, [_keyed(_thing_row(self.things[t]), "id") for t in dirty])
        if self._new_execs:
            c.execute(insert(executions), [_exec_row(self.execs[k]) for k in sorted(self._new_execs)
                                           if k in self.execs])
        dirty_execs = sorted(self._dirty_execs - self._new_execs)
        if dirty_execs:
            c.execute(_UPDATE_EXECUTION, [_keyed(_exec_row(self.execs[k]), "job_id", "thing") for k in dirty_execs])
        for key in sorted(self._dirty_tracks):
            tr = self.tracks[key]
            done = c.execute(update(tracks).where(tracks.c.rollout_id == key[0], tracks.c.variant == key[1])
                             .values(**tr)).rowcount
            if not done:
                c.execute(insert(tracks).values(**tr))
        for rid in sorted(self._dirty_rollouts):
            c.execute(update(rollouts).where(rollouts.c.id == rid).values(state=self.rollouts[rid]["state"]))
        for e in self._events:
            add_event(c, e[0], e[1], e[2], variant=e[3], wave=e[4], data=e[5])
        self._new_things.clear()
        self._dirty_things.clear()
        self._new_execs.clear()
        self._dirty_execs.clear()
        self._dirty_tracks.clear()
        self._dirty_rollouts.clear()
        self._events.clear()

    def _flush(self) -> None:
        if any((self._new_things, self._dirty_things, self._new_execs, self._dirty_execs, self._dirty_tracks,
                self._dirty_rollouts, self._events)):
            with self.db.begin() as c:
                self._write(c)
        self._publish_out()

    def _publish_out(self) -> None:
        out, self._out = self._out, []
        for topic, payload in out:
            self.conn.publish(topic, payload)


def _job_id(r: dict, variant: str) -> str:
    return f"r{r['id']}-{r['kind']}-{variant}"


def _wave_name(k: int) -> str:
    return "canary" if k == 0 else f"wave {k}"


_UPDATE_THING = (update(things).where(things.c.id == bindparam("k_id"))
                 .values({c.name: bindparam(c.name) for c in things.columns if c.name != "id"}))
_UPDATE_EXECUTION = (update(executions)
                     .where(executions.c.job_id == bindparam("k_job_id"), executions.c.thing == bindparam("k_thing"))
                     .values({c: bindparam(c) for c in EXECUTION_COLUMNS if c not in ("job_id", "thing")}))


def _keyed(row: dict, *keys: str) -> dict:
    """A row for an executemany UPDATE: its key columns renamed to the WHERE clause's parameters."""
    out = {k: v for k, v in row.items() if k not in keys}
    out.update({f"k_{k}": row[k] for k in keys})
    return out


def _thing_row(t: dict) -> dict:
    return {c.name: t.get(c.name) for c in things.columns} | {"desired_version": t.get("desired_version") or 0}


def _exec_row(ex: dict) -> dict:
    return {c: ex.get(c) for c in EXECUTION_COLUMNS}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rig.rollout.engine", description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--broker", required=True)
    ap.add_argument("--artefacts", required=True, type=Path)
    ap.add_argument("--state", type=Path, help="write {pid, ota} here once serving")
    args = ap.parse_args(argv)
    broken = frozenset(filter(None, os.environ.get("RIG_ROLLOUT_BROKEN", "").split(",")))
    unknown = broken - set(BROKEN)
    if unknown:
        print(f"rig rollout engine: error: RIG_ROLLOUT_BROKEN {sorted(unknown)}; known: {', '.join(BROKEN)}",
              file=sys.stderr)
        return 2

    async def go():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def ready(engine: Engine):
            if args.state:
                tmp = args.state.with_suffix(".tmp")
                tmp.write_text(json.dumps({"pid": os.getpid(), "ota": [engine.ota.host, engine.ota.port]}))
                os.replace(tmp, args.state)
            print("ready", flush=True)

        await Engine(args.db, args.broker, args.artefacts, broken=broken).run(stop, ready)

    try:
        asyncio.run(go())
    except RigError as exc:
        print(f"rig rollout engine: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
