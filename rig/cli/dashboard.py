"""`rig dashboard`: the lab, runs, trends, provisioning and rollouts in a browser, served by rig."""

import socket
from pathlib import Path

import click

from rig.cli.console import out
from rig.cli.options import rack_option
from rig.database import safe_url
from rig.errors import RigError
from rig.results.store import default_url

DEFAULT_FLEET = Path(".rig/fleet")  # rig.cli.fleet's default folder

HELP = """Serve the dashboard: the lab, the run history, trends, provisioning and rollouts, on one web page.

\b
  rig dashboard                                   http://127.0.0.1:8080/
  rig dashboard --port 9000 --rack targets/bench.yaml
  rig dashboard --results postgresql+psycopg://rig@db/results --host 0.0.0.0
  rig dashboard --fleet .rig/fleet                 # the rollouts of `rig fleet up`'s fleet

Pages: lab (boards, power, lease holder, health, quarantine), runs (history, each run's tests by
board and scenario with their console slices), trends (suite duration, failure rate per scenario
over the last 30 runs), provisioning (units per hour, refusals, per-fixture throughput), rollouts
(per rollout, variant and wave; the fleet's versions from its devices' ground truth; the event
log; updated live). The pages need nothing from the internet. Ctrl-C stops the server.
"""


@click.command(help=HELP)
@rack_option
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="TCP port to listen on; 0: any free port (the first line printed names it).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--results", "results_url", default=None, metavar="URL",
              help="Results store (SQLAlchemy URL).  [default: $RIG_RESULTS or <runtime dir>/results.db]")
@click.option("--fleet", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="The folder of a fleet (`rig fleet up --fleet DIR`) for the rollouts page.  "
                   "[default: .rig/fleet when there is one]")
@click.option("--rollouts", "rollouts_url", default=None, metavar="URL",
              help="Rollout database (SQLAlchemy URL).  [default: rollouts.db in the fleet folder]")
def dashboard(rack, port, host, results_url, fleet, rollouts_url):
    from aiohttp import web

    from rig.results.store import Store
    from rig.web.app import make_app

    url = results_url or default_url()
    Store(url).close()  # a bad URL or an unreachable server is one line now, not an error page later
    if fleet is None and DEFAULT_FLEET.is_dir():
        fleet = DEFAULT_FLEET
    app = make_app(results=url, rack=rack, fleet=fleet, rollouts=rollouts_url)
    try:
        sock = socket.create_server((host, port))  # bound here, so the line below names the real port
    except OSError as exc:
        raise RigError(f"--port {port}: cannot listen on {host} ({exc.strerror}); pick another, or 0") from None
    out.print(f"rig dashboard on http://{host}:{sock.getsockname()[1]}/ (results {safe_url(url)}, rack {rack}); "
              "Ctrl-C stops it", markup=False)
    web.run_app(app, sock=sock, print=None, handle_signals=True)
