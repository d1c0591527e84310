"""The install-order guard: upstream pyserial over pyserial-labgrid must stop rig with one line."""

import os
import subprocess
import sys
import zipfile

import pytest


@pytest.fixture(scope="module")
def upstream_pyserial(tmp_path_factory):
    """Upstream pyserial 3.5 unpacked into a folder, as `pip install esptool` would put it."""
    where = tmp_path_factory.mktemp("upstream")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check",
         "pyserial==3.5", "-d", str(where)],
        check=True,
    )
    (wheel,) = where.glob("pyserial-3.5-*.whl")
    zipfile.ZipFile(wheel).extractall(where / "site")
    return where / "site"


def run(args, pythonpath=None):
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)


def test_fork_in_place_passes():
    result = run(["-m", "rig.serialcheck"])
    assert result.returncode == 0, result.stderr


def test_clobbered_fork_fails_with_one_line(upstream_pyserial):
    result = run(["-m", "rig.serialcheck"], pythonpath=upstream_pyserial)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "upstream pyserial's, not pyserial-labgrid's" in line
    assert "pip install --force-reinstall --no-deps pyserial-labgrid" in line


def test_rig_command_refuses_to_run_on_the_clobbered_fork(upstream_pyserial):
    result = run(["-m", "rig", "boards"], pythonpath=upstream_pyserial)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("rig: error: serial.rfc2217 at ")
