"""The trends page: suite duration, results per run, failure rate per scenario, flaky tests."""

from aiohttp import web

from rig.results import views
from rig.web import svg
from rig.web.app import OPTIONS, blocking, in_store, render

TITLE = "Trends"
PATH = "/trends"


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, page)


async def page(request: web.Request) -> web.Response:
    data = await blocking(in_store, request.app[OPTIONS].get("results"), views.trends)
    runs = data["runs"]
    outcomes = ("passed", "failed", "error", "skipped")
    return await render(
        request, "trends.html", **data,
        results_chart=svg.stacked_bars([(f"#{r['id']}", r["counts"]) for r in runs], outcomes,
                                       f"results of the last {len(runs)} runs"),
        duration_chart=svg.line([(f"#{r['id']}", r["duration"]) for r in runs], "duration per run", " s"),
        rate_chart=svg.stacked_bars([(x["scenario"][:18], {"rate": round(100 * x["rate"])}) for x in data["rates"]],
                                    ("rate",), "failure rate per scenario", " %"))
