"""Root conftest: settings shared by every test folder. rig's own fixtures come from rig.pytest_plugin."""

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import settings

from rig.cli import main

# Fixtures several folders share, defined once: two definitions of the session-wide browser would
# start two playwright instances in one xdist worker, and playwright refuses the second one.
pytest_plugins = ("tests.browser", "tests.postgres", "pytester")  # pytester: tests/plugin runs pytest

# Fuzz tests run a bounded number of examples by default and many more in the nightly profile.
settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile("nightly", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def rig_cli(monkeypatch, capsys):
    """`rig ARGS` through its entry point in this process: exit status, stdout, stderr.

    A fresh interpreter per call costs a second of imports; tests/cli covers the console script.
    """

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["rig", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        captured = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)

    return run



DURATIONS = Path(__file__).parent / "tests" / "durations.txt"


@pytest.hookimpl(trylast=True)  # after tests/hil/conftest.py's: a HIL run is scheduled by board
def pytest_xdist_make_scheduler(config, log):
    """Under xdist's default scheduling (load): whole test modules to a worker (a module's labs start
    once), in collection order, which puts the longest modules first (pytest_collection_modifyitems
    below) - the greedy longest-first order, so no long module starts late and runs on alone while
    the other workers sit idle. (xdist's load scheduling hands out runs of consecutive tests: the
    longest modules, collected first, would all go to one worker.)"""
    if config.getvalue("dist") != "load" or config.getoption("--rig-coordinator"):
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False  # as collected: xdist would put the modules of most tests first
    return LoadFileScheduling(config, log)


def pytest_collection_modifyitems(items):
    """The longest first, by the seconds tests/durations.txt records of a measured run: per test where
    it names the test (the HIL run's side-lab tests, which its scheduler hands out one by one), else per
    module. Within a module, and among what is not recorded, the order stays as collected (a stable sort)."""
    seconds = {}
    for line in DURATIONS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            value, key = line.split(maxsplit=1)
            seconds[key] = float(value)

    def took(item) -> float:
        module = item.nodeid.partition("::")[0]
        return seconds.get(item.nodeid, seconds.get(module, 0.0))

    items.sort(key=lambda item: -took(item))
