"""`rig dashboard`: the lab, runs, trends and provisioning in a browser, served by rig."""

import click

from rig.cli.console import out
from rig.cli.options import rack_option
from rig.results.store import default_url, safe_url

HELP = """Serve the dashboard: the lab, the run history, trends and provisioning, on one web page.

\b
  rig dashboard                                   http://127.0.0.1:8080/
  rig dashboard --port 9000 --rack targets/bench.yaml
  rig dashboard --results postgresql+psycopg://rig@db/results --host 0.0.0.0

Pages: lab (boards, power, lease holder, health, quarantine), runs (history, each run's tests by
board and scenario with their console slices), trends (suite duration, failure rate per scenario
over the last 30 runs), provisioning (units per hour, refusals, per-fixture throughput). The pages
need nothing from the internet. Ctrl-C stops the server.
"""


@click.command(help=HELP)
@rack_option
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="TCP port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--results", "results_url", default=None, metavar="URL",
              help="Results store (SQLAlchemy URL).  [default: $RIG_RESULTS or <runtime dir>/results.db]")
def dashboard(rack, port, host, results_url):
    from aiohttp import web

    from rig.results.store import Store
    from rig.web.app import make_app

    url = results_url or default_url()
    Store(url).close()  # a bad URL or an unreachable server is one line now, not an error page later
    app = make_app(results=url, rack=rack)
    out.print(f"rig dashboard on http://{host}:{port}/ (results {safe_url(url)}, rack {rack}); Ctrl-C stops it",
              markup=False)
    web.run_app(app, host=host, port=port, print=None, handle_signals=True)
