"""Root conftest: settings shared by every test folder. rig's own fixtures come from rig.pytest_plugin."""

import os

from hypothesis import settings

# Fuzz tests run a bounded number of examples by default and many more in the nightly profile.
settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile("nightly", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
