"""rig's pytest plugin: `pytest --rig-rack FILE` selects the rack every HIL test runs on."""

import os

import pytest

from rig.cli.options import DEFAULT_RACK


def pytest_addoption(parser):
    group = parser.getgroup("rig", "rig hardware-in-the-loop lab")
    group.addoption(
        "--rig-rack",
        metavar="FILE",
        default=os.environ.get("RIG_RACK", DEFAULT_RACK),
        help=f"labgrid environment file of the rack to test on (default: $RIG_RACK or {DEFAULT_RACK})",
    )


def pytest_configure(config):
    from rig.errors import RigError
    from rig.serialcheck import check_rfc2217

    try:
        check_rfc2217()
    except RigError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="session")
def rig_rack(request):
    """The validated rack (rig.lab.Rack) named by --rig-rack."""
    from rig.lab import load_rack

    return load_rack(request.config.getoption("--rig-rack"))
