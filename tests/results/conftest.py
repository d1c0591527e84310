"""What the results tests share: child pytest sessions run as a user runs them (a process of their
own, with the rig plugin, recording into a store)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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


def private_rack(path: Path) -> Path:
    """targets/virtual-rack.yaml with every console and the power switch on free ports, probes renamed."""
    import yaml

    from tests.free_ports import free_port

    doc = yaml.safe_load((Path(__file__).resolve().parents[2] / "targets" / "virtual-rack.yaml").read_text())
    power = free_port()
    for spec in doc["targets"].values():
        res = spec["resources"]
        res["NetworkSerialPort"]["port"] = free_port()
        res["NetworkPowerPort"]["host"] = f"http://127.0.0.1:{power}/outlet/{{index}}/{{value}}"
        if "RigDebugProbe" in res:
            res["RigDebugProbe"]["unique_id"] += f"-{path.parent.name}"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
