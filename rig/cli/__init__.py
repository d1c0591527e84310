"""The `rig` command. Each verb lives in its own module here and is listed in VERBS below.

Verbs are imported only when they run (or when --help lists them): several pull in esptool,
pyocd or smpclient, and a bench command should not pay seconds of imports it does not use.
"""

import importlib
import sys

import click

from rig.cli.console import err
from rig.errors import RigError
from rig.serialcheck import check_rfc2217

# verb -> "module:attribute", in the order `rig --help` lists them (the order of a day's work).
VERBS = {
    "boards": "rig.cli.boards:boards",
    "lab": "rig.cli.lab:lab",
    "build": "rig.cli.build:build",
    "sign": "rig.cli.sign:sign",
    "verify": "rig.cli.verify:verify",
    "image": "rig.cli.image:image",
    "delta": "rig.cli.delta:delta",
    "flash": "rig.cli.flash:flash",
    "console": "rig.cli.console_cmd:console_cmd",
    "power": "rig.cli.power:power",
    "reset": "rig.cli.reset:reset",
    "ota": "rig.cli.ota:ota",
    "provision": "rig.cli.provision:provision",
    "demo": "rig.cli.demo:demo",
    "health": "rig.cli.health:health",
    "results": "rig.cli.results:results",
    "report": "rig.cli.report:report",
    "dashboard": "rig.cli.dashboard:dashboard",
    "fleet": "rig.cli.fleet:fleet",
    "rollout": "rig.cli.rollout:rollout",
}

HELP = """rig - a hardware-in-the-loop lab for OTA firmware updates.

\b
Boards are described in labgrid environment files under targets/. The virtual rack
(targets/virtual-rack.yaml) runs the same protocols as real boards, so every verb works on
either. Start with:
  rig boards --rack targets/virtual-rack.yaml
  rig lab up                      # serve the virtual rack on loopback
  rig demo                        # the main job, end to end
"""


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(VERBS)

    def get_command(self, ctx, name):
        target = VERBS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, help=HELP,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="rig")
def cli():
    pass


def main():
    try:
        check_rfc2217()
        cli(prog_name="rig")
    except RigError as exc:
        for line in str(exc).splitlines():
            err(line)
        sys.exit(2)
    except KeyboardInterrupt:
        err("interrupted")
        sys.exit(130)
