"""The trends page: suite duration, results per run, failure rate per scenario, flaky tests."""

from aiohttp import web

from rig.results import views
from rig.results.store import Store
from rig.web import svg
from rig.web.app import OPTIONS, blocking, render

TITLE = "Trends"
PATH = "/trends"


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, page)


def _trends(url):
    store = Store(url)
    try:
        return views.trends(store)
    finally:
        store.close()


async def page(request: web.Request) -> web.Response:
    data = await blocking(_trends, request.app[OPTIONS].get("results"))
    runs = data["runs"]
    outcomes = ("passed", "failed", "error", "skipped")
    return await render(
        request, "trends.html", **data,
        results_chart=svg.stacked_bars([(f"#{r['id']}", r["counts"]) for r in runs], outcomes,
                                       f"results of the last {len(runs)} runs"),
        duration_chart=svg.line([(f"#{r['id']}", r["duration"]) for r in runs], "duration per run", " s"),
        rate_chart=svg.stacked_bars([(x["scenario"][:18], {"rate": round(100 * x["rate"])}) for x in data["rates"]],
                                    ("rate",), "failure rate per scenario", " %"))
