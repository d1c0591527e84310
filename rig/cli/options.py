"""Options shared by several verbs, so they read and behave the same everywhere."""

import os

import click

DEFAULT_RACK = "targets/virtual-rack.yaml"

rack_option = click.option(
    "--rack",
    default=lambda: os.environ.get("RIG_RACK", DEFAULT_RACK),
    show_default=f"$RIG_RACK or {DEFAULT_RACK}",
    metavar="FILE",
    help="labgrid environment file describing the boards.",
)
