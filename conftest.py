"""Root conftest: settings shared by every test folder. rig's own fixtures come from rig.pytest_plugin."""

import os
import sys
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
