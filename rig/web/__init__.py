"""The one dashboard of rig (`rig dashboard`): the lab, runs, trends, provisioning and rollouts.

aiohttp serves it (one asyncio stack for the pages, server-sent events and the fleet simulator's
HTTP client), Jinja2 renders the pages, charts are SVG drawn on the server (rig.web.svg) and the CSS
is one file, so a page needs nothing from outside: it works offline, and the static report
(rig.results.report) reuses the same templates with the CSS inlined.

Each area of the dashboard is one module here plus its templates; rig.web.app.AREAS lists them.
"""
