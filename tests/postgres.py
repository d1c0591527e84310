"""A real PostgreSQL server for tests of the databases rig keeps (provisioning records, results),
started from Debian's postgresql binaries. Import the fixture into a folder's conftest.py."""

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.free_ports import free_port


@pytest.fixture(scope="session")
def postgres_url():
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        message = "PostgreSQL server binaries not installed (Debian package postgresql; .ci/setup installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    bindir = os.path.dirname(bins[-1])
    # PostgreSQL refuses to run as root: run it as the postgres user when we are root, in a folder
    # of its own (pytest's temporary folders are private to root).
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="rig-pg-")) / "data"
    data.parent.chmod(0o777)
    subprocess.run([*as_user, f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "rig"],
                   check=True, capture_output=True)
    port = free_port()
    log = data.parent / "pg.log"
    subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-l", str(log), "-w", "-o",
                    f"-p {port} -k {data.parent} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        subprocess.run([f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "rig", "records"], check=True)
        yield f"postgresql+psycopg://rig@127.0.0.1:{port}/records"
    finally:
        subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(data.parent, ignore_errors=True)
