"""The lab page: the rack's boards with variant, power, lease holder, health and quarantine."""

import json
import urllib.request

from aiohttp import web

from rig.errors import RigError
from rig.web.app import OPTIONS, blocking, render

TITLE = "Lab"
PATH = "/lab"


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, page)


async def page(request: web.Request) -> web.Response:
    options = request.app[OPTIONS]
    return await render(request, "lab.html", **await blocking(lab_view, options["rack"], options.get("results")))


def lab_view(rack_path: str, results_url: str | None) -> dict:
    """What the lab page shows, read as `rig lab status` and `rig health` read it."""
    from rig.lab import leases
    from rig.results.store import Store
    from rig.sim import registry

    try:
        rack = registry.load_live_rack(rack_path)  # leases name the console the lab bound
    except RigError as exc:
        return {"rack": rack_path, "boards": [], "problem": str(exc).splitlines()[0], "lab_state": ""}
    live, lab_state = {}, "no board of this rack is virtual"
    if any(b.virtual for b in rack.boards):
        entry = registry.read(registry.lab_name(rack_path))
        lab_state = "virtual lab not running (`rig lab up`)"
        if entry is not None:
            control = entry["control"]
            try:
                with urllib.request.urlopen(f"http://{control['host']}:{control['port']}/boards", timeout=3) as r:
                    live = json.load(r)
                lab_state = f"virtual lab up (pid {entry['pid']}, timing {entry.get('timing', 'none')})"
            except OSError as exc:
                lab_state = f"virtual lab up but its control endpoint does not answer ({exc})"
    store = Store(results_url)
    try:
        quarantined = store.quarantined()
        boards = []
        for b in rack.boards:
            holder = leases.holder_of(b.id, b.console)
            health = store.last_health(b.id)
            counters = live.get(b.id)
            boards.append({
                "id": b.id, "variant": b.variant, "virtual": b.virtual, "console": b.console,
                "power": ("on" if counters["powered"] else "off") if counters else ("-" if b.virtual else "not read"),
                "holder": (f"{holder.get('holder', '?')} (pid {holder.get('pid')})" if holder else None),
                "health": _health_text(health), "health_class": _health_class(health),
                "quarantine": quarantined.get(b.id),
            })
    finally:
        store.close()
    return {"rack": rack_path, "boards": boards, "problem": None, "lab_state": lab_state}


def _health_text(check: dict | None) -> str:
    if check is None:
        return "not checked"
    return f"{'ok' if check['ok'] else 'FAILED'} at {check['at'][:19].replace('T', ' ')}" + (
        "" if check["ok"] else f": {check['reason']}")


def _health_class(check: dict | None) -> str:
    return "muted" if check is None else ("ok" if check["ok"] else "bad")
