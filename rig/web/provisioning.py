"""The provisioning page: batches with units per hour, refusals, per-fixture throughput."""

from aiohttp import web

from rig.results import views
from rig.web import svg
from rig.web.app import OPTIONS, blocking, in_store, render

TITLE = "Provisioning"
PATH = "/provisioning"


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, page)


async def page(request: web.Request) -> web.Response:
    data = await blocking(in_store, request.app[OPTIONS].get("results"), views.provisioning)
    chart = svg.stacked_bars([(f"#{b['run']['id']}", {"passed": b["provisioned"], "skipped": b["refused"],
                                                      "failed": b["failed"]}) for b in reversed(data["batches"])],
                             ("passed", "failed", "skipped"), "units per batch (provisioned, failed, refused)")
    return await render(request, "provisioning.html", **data, chart=chart)
