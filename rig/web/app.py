"""The dashboard's app factory, `make_app`, and what every area shares: templates, options, data.

An area is one module `rig.web.<name>` listed in AREAS, plus its templates under templates/. The
module defines

    TITLE = "Runs"                 # its label in the navigation bar
    PATH = "/runs"                 # the page the label links to
    def setup(app): ...            # add its routes (app.router.add_get(...)), startup/cleanup hooks

and renders with `await render(request, "runs.html", **context)`. Options given to make_app
(`make_app(results=URL, rack=FILE, broker=...)`) are in `app[OPTIONS]`; blocking work (database
queries, reading the lab) goes through `await blocking(fn, *args)` so one slow query never stalls
the other pages or a server-sent-events stream; a query of the results store is
`await blocking(in_store, url, fn, *args)`. An area whose module is not installed is left out.
"""

import asyncio
import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

import jinja2
from aiohttp import web

from rig.web import svg

# Area modules in navigation order; the first is the home page.
AREAS = ("lab", "runs", "trends", "provisioning", "rollouts")

OPTIONS = web.AppKey("options", dict)
NAV = web.AppKey("nav", list)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
STATIC = Path(__file__).with_name("static")


def environment() -> jinja2.Environment:
    """The Jinja2 environment of the dashboard and the static report (autoescaped HTML)."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("rig.web", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["duration"] = svg.duration
    env.filters["when"] = svg.when
    return env


def area_modules(names=AREAS) -> list[ModuleType]:
    """The installed area modules of `names`, in order."""
    found = []
    for name in names:
        module = f"rig.web.{name}"
        if importlib.util.find_spec(module) is not None:
            found.append(importlib.import_module(module))
    return found


def make_app(areas=AREAS, **options) -> web.Application:
    """The dashboard: every installed area of `areas`; `options` are the `rig dashboard` settings
    (results: the results store URL, rack: the rack file) and whatever an area needs."""
    app = web.Application()
    app[OPTIONS] = options
    app[TEMPLATES] = environment()
    modules = area_modules(areas)
    app[NAV] = [(m.TITLE, m.PATH) for m in modules]
    for m in modules:
        m.setup(app)
    if modules:
        home = modules[0].PATH
        app.router.add_get("/", lambda request: _redirect(home))
    app.router.add_static("/static", str(STATIC), name="static")
    return app


async def _redirect(path: str):
    raise web.HTTPFound(path)


async def render(request: web.Request, template: str, status: int = 200, **context) -> web.Response:
    """The page `template` with the navigation bar; `context` goes to the template."""
    app = request.app
    html = app[TEMPLATES].get_template(template).render(
        nav=app[NAV], here=request.path, options=app[OPTIONS], standalone=False, **context)
    return web.Response(text=html, content_type="text/html", status=status)


async def blocking(fn, *args, **kwargs):
    """Run a blocking call (a database query, a lab read) off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def in_store(url: str | None, fn, *args):
    """fn(store, *args) on the results store at `url`, opened for the call and closed after (a page's
    query, for blocking()). Opening reaps runs whose process is gone, so what a page lists is current."""
    from rig.results.store import Store

    store = Store(url)
    try:
        return fn(store, *args)
    finally:
        store.close()
