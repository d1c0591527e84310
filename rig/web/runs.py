"""The runs pages: the history (pass/fail per day, every run) and one run's tests by board and scenario."""

from aiohttp import web

from rig.results import views
from rig.web import svg
from rig.web.app import OPTIONS, blocking, in_store, render

TITLE = "Runs"
PATH = "/runs"
HISTORY = 200  # runs listed


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, history)
    app.router.add_get(PATH + "/{run_id:\\d+}", run)


async def history(request: web.Request) -> web.Response:
    runs = await blocking(in_store, request.app[OPTIONS].get("results"), lambda s: s.runs(limit=HISTORY))
    chart = svg.stacked_bars(views.per_day(runs), ("passed", "failed", "error", "skipped"), "results per day")
    return await render(request, "runs.html", runs=runs, per_day=chart)


async def run(request: web.Request) -> web.Response:
    run_id = int(request.match_info["run_id"])
    view = await blocking(in_store, request.app[OPTIONS].get("results"), views.run_view, run_id)
    if view is None:
        raise web.HTTPNotFound(text=f"no run {run_id} in the results store")
    return await render(request, "run.html", **view)
