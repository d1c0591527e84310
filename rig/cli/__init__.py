"""The `rig` command. Each verb lives in its own module here and is registered below."""

import sys

import click

from rig.cli.boards import boards
from rig.cli.build import build
from rig.cli.console import err
from rig.cli.console_cmd import console_cmd
from rig.cli.delta import delta
from rig.cli.demo import demo
from rig.cli.flash import flash
from rig.cli.image import image
from rig.cli.lab import lab
from rig.cli.power import power
from rig.cli.reset import reset
from rig.cli.sign import sign
from rig.cli.verify import verify
from rig.errors import RigError
from rig.serialcheck import check_rfc2217

HELP = """rig - a hardware-in-the-loop lab for OTA firmware updates.

\b
Boards are described in labgrid environment files under targets/. The virtual rack
(targets/virtual-rack.yaml) runs the same protocols as real boards, so every verb works on
either. Start with:
  rig boards --rack targets/virtual-rack.yaml
"""


@click.group(help=HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="rig")
def cli():
    pass


cli.add_command(boards)
cli.add_command(sign)
cli.add_command(verify)
cli.add_command(image)
cli.add_command(delta)
cli.add_command(demo)
cli.add_command(lab)
cli.add_command(flash)
cli.add_command(console_cmd)
cli.add_command(power)
cli.add_command(reset)
cli.add_command(build)


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
