"""The rollouts page: progress per rollout, variant track and wave; the fleet's version
distribution from the devices' ground truth; failure and timeout counts; the event log (a halt
names its wave, its counts and the threshold crossed). Live: a server-sent-events stream tells the
page when anything changed, and the page fetches its fresh body.

Options (`rig dashboard --fleet DIR [--rollouts URL]`): the fleet folder (its ground truth, from
the running simulator) and the rollout database (default: rollouts.db in the fleet folder).
"""

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from rig.web import svg
from rig.web.app import OPTIONS, TEMPLATES, blocking, render

TITLE = "Rollouts"
PATH = "/rollouts"
EVERY_S = 1.0  # how often the stream looks for changes
STATUS_KEYS = ("succeeded", "failed", "timed_out", "rolled_back", "in_flight", "queued", "planned", "canceled",
               "stuck")
_BUCKET = {"SUCCEEDED": "succeeded", "FAILED": "failed", "REJECTED": "failed", "TIMED_OUT": "timed_out",
           "ROLLED_BACK": "rolled_back", "IN_PROGRESS": "in_flight", "QUEUED": "queued", "PLANNED": "planned",
           "CANCELED": "canceled", "REMOVED": "canceled", "STUCK": "stuck"}


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, page)
    app.router.add_get(PATH + "/body", body)
    app.router.add_get(PATH + "/stream", stream)


def _sources(options: dict) -> tuple[Path | None, str | None]:
    folder = options.get("fleet")
    url = options.get("rollouts") or (f"sqlite:///{Path(folder).resolve() / 'rollouts.db'}" if folder else None)
    return (Path(folder) if folder else None), url


def rollouts_view(folder: Path | None, url: str | None) -> dict:
    """What the page shows: the engine's record per rollout, and the fleet's ground truth."""
    from rig.errors import RigError
    from rig.fleet.control import Fleet
    from rig.rollout.store import open_db, summary

    view: dict[str, Any] = {"rollouts": [], "truth": None, "problem": None, "fleet": str(folder) if folder else None}
    if url is None:
        view["problem"] = "no fleet given: start the dashboard with --fleet DIR (the folder of `rig fleet up`)"
        return view
    try:
        rollouts = summary(open_db(url))
    except RigError as exc:
        view["problem"] = str(exc).splitlines()[0]
        return view
    for r in reversed(rollouts):
        rows = []
        for key in sorted(r["counts"], key=lambda k: (k.split("/")[0], int(k.split("/")[1]))):
            variant, wave = key.split("/")
            counts: Counter[str] = Counter()
            for status, n in r["counts"][key].items():
                counts[_BUCKET.get(status, "in_flight")] += n
            rows.append({"variant": variant, "wave": int(wave), "label": "canary" if wave == "0" else f"wave {wave}",
                         "counts": {k: counts.get(k, 0) for k in STATUS_KEYS}, "total": sum(counts.values())})
        r["rows"] = rows
        for e in r["events"]:
            e["time"] = datetime.fromtimestamp(e["at"], UTC).strftime("%H:%M:%S")
        r["totals"] = {k: sum(row["counts"][k] for row in rows) for k in STATUS_KEYS}
        r["chart"] = svg.stacked_bars([(f"{row['variant']} {row['label']}", row["counts"]) for row in rows],
                                      ("succeeded", "failed", "timed_out", "rolled_back", "in_flight", "queued"),
                                      f"rollout {r['id']}: devices per variant and wave")
        view["rollouts"].append(r)
    if folder is not None:
        try:
            truth = Fleet.find(folder).truth()
        except (RigError, OSError) as exc:
            view["truth_problem"] = f"fleet ground truth not readable: {str(exc).splitlines()[0]}"
        else:
            dist = Counter((t["variant"], t["running"], bool(t["confirmed"])) for t in truth.values())
            view["truth"] = [{"variant": v, "version": ver, "confirmed": c, "devices": n}
                             for (v, ver, c), n in sorted(dist.items())]
            view["devices"] = len(truth)
            view["versions"] = versions = sorted({t["running"] for t in truth.values()})
            per_variant: dict[str, Counter[str]] = {}
            for t in truth.values():
                per_variant.setdefault(t["variant"], Counter())[t["running"]] += 1
            view["versions_chart"] = svg.stacked_bars(
                [(v, dict(c)) for v, c in sorted(per_variant.items())], tuple(versions),
                "the fleet's running versions per variant (ground truth)")
    return view


async def page(request: web.Request) -> web.Response:
    view = await blocking(rollouts_view, *_sources(request.app[OPTIONS]))
    return await render(request, "rollouts.html", **view)


async def body(request: web.Request) -> web.Response:
    """The page's main part alone, for the live refresh."""
    view = await blocking(rollouts_view, *_sources(request.app[OPTIONS]))
    html = request.app[TEMPLATES].get_template("rollouts_body.html").render(**view)
    return web.Response(text=html, content_type="text/html")


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `changed` whenever the rollouts or the fleet's truth changed."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    folder, url = _sources(request.app[OPTIONS])
    last = None
    while True:
        view = await blocking(rollouts_view, folder, url)
        mark = json.dumps([view.get("truth"), [(r["state"], r["counts"], len(r["events"])) for r in view["rollouts"]]],
                          sort_keys=True, default=str)
        if mark != last:
            last = mark
            await resp.write(b"event: changed\ndata: {}\n\n")
        await asyncio.sleep(EVERY_S)
