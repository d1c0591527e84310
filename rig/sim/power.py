"""The rack's network power switch, speaking the `simplerest` protocol labgrid's NetworkPowerDriver uses.

The rack file's URL template, e.g. http://127.0.0.1:0/outlet/{index}/{value}, is served as is on
its port (0: one the lab chooses): GET with a value of 0 or 1 switches the outlet, GET without it
(trailing slash removed, as labgrid's client does) answers "1" or "0".
"""

import logging
import re
from urllib.parse import urlparse

from rig.errors import RigError
from rig.sim.board import Board
from rig.sim.http_endpoint import HttpEndpoint

log = logging.getLogger(__name__)


def _path_pattern(template_path: str) -> re.Pattern:
    if "{index}" not in template_path:
        raise RigError(f"power URL path {template_path!r} has no {{index}}; "
                       "write it like http://127.0.0.1:0/outlet/{index}/{value}")
    pattern = re.escape(template_path).replace(r"\{index\}", r"(?P<index>\d+)")
    pattern = pattern.replace(r"\{value\}", r"(?P<value>[01]?)")
    return re.compile(pattern)


class PowerSwitch:
    """One HTTP power switch serving every outlet of the rack that shares its URL."""

    def __init__(self, url_template: str, outlets: dict[int, Board], port: int):
        """Serve the URL's paths on `port` (the URL's own, or the lab's choice where it says 0)."""
        url = urlparse(url_template)
        pattern = _path_pattern(url.path)

        def handle(method, path, query):
            # labgrid reads an outlet by formatting the template with value="" and stripping "/".
            match = pattern.fullmatch(path) or pattern.fullmatch(path + "/")
            board = outlets.get(int(match["index"])) if match else None
            if board is None:
                return 404, f"no outlet at {path}\n", "text/plain"
            assert match is not None  # a board was found through it
            value = match.groupdict().get("value")
            if value:
                log.info("outlet %s (%s) -> %s", match["index"], board.id, value)
                board.set_power(value == "1")
            return 200, "1" if board.powered else "0", "text/plain"

        self._http = HttpEndpoint(url.hostname or "127.0.0.1", port, handle, "power-switch")
        self.host, self.port = self._http.host, self._http.port

    def close(self) -> None:
        self._http.close()
