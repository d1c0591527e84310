"""What the results tests share: child pytest sessions run as a user runs them (a process of their
own, with the rig plugin, recording into a store)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.labs import lab_rack

RIG = str(Path(sys.executable).parent / "rig")


class Session:
    """Child pytest sessions and `rig` commands in a folder of their own, sharing one results store."""

    def __init__(self, root: Path, url: str):
        self.root = root
        self.url = url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RIG_RACK", "RIG_RESULTS",
                                                                              "PYTEST_"))}
        self.env["RIG_RUNTIME_DIR"] = str(root / "runtime")

    def module(self, source: str, name: str = "test_inner.py") -> Path:
        path = self.root / name
        path.write_text(textwrap.dedent(source))
        return path

    def pytest_cmd(self, *args) -> list[str]:
        return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir",
                str(self.root), "--rig-results", self.url, *map(str, args)]

    def pytest(self, *args, env=None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(self.pytest_cmd(*args), cwd=self.root, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)

    def rig(self, *args, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([RIG, *map(str, args)], cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def store(self):
        from rig.results.store import Store

        return Store(self.url)


@pytest.fixture
def sessions(tmp_path):
    return Session(tmp_path, f"sqlite:///{tmp_path / 'results.db'}")


def private_rack(path: Path, boards: tuple[str, ...]) -> Path:
    """The boards `boards` of targets/virtual-rack.yaml as PATH, ports chosen by its lab (only the
    boards a test uses: a lab's start and its idle boards cost CPU)."""
    return lab_rack(path.parent, name=path.parent.name, boards=boards, board_ids=False).rename(path)
