"""`rig report`: one run as one self-contained HTML file, for a CI artefact.

The dashboard's run page (templates/run.html) with its stylesheet inlined and nothing to fetch: no
script, no font, no image that is not inline SVG, so it opens from disk with no network.
"""

from pathlib import Path

from rig.atomic import write_text
from rig.errors import RigError
from rig.results import views
from rig.results.store import Store
from rig.web.app import STATIC, environment


def render(store: Store, run_id: int) -> str:
    view = views.run_view(store, run_id)
    if view is None:
        raise RigError(f"no run {run_id} in the results store; `rig results list` shows the runs")
    return environment().get_template("run.html").render(
        standalone=True, inline_css=(STATIC / "rig.css").read_text(), nav=[], here="", options={}, **view)


def write(store: Store, run_id: int, path: Path) -> None:
    write_text(path, render(store, run_id))
