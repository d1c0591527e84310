"""Where a machine's live lab state is recorded: running labs (rig.sim.registry), board leases
(rig.lab.leases) and what the pytest plugin started. One folder, so every tool finds the others."""

import os
from pathlib import Path


def runtime_dir() -> Path:
    """$RIG_RUNTIME_DIR, default /tmp/rig-<uid>."""
    return Path(os.environ.get("RIG_RUNTIME_DIR") or f"/tmp/rig-{os.getuid()}")
