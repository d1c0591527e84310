"""A real PostgreSQL server for tests of the databases rig keeps (provisioning records, results),
started from Debian's postgresql binaries. Import the fixture into a folder's conftest.py."""

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest


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
    log = data.parent / "pg.log"
    # A unix socket in the server's own folder and no TCP: servers of parallel runs cannot collide.
    subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-l", str(log), "-w", "-o",
                    f"-k {data.parent} -c listen_addresses=''", "start"],
                   check=True, capture_output=True)
    try:
        subprocess.run([f"{bindir}/createdb", "-h", str(data.parent), "-U", "rig", "records"], check=True)
        yield f"postgresql+psycopg://rig@/records?host={quote(str(data.parent), safe='')}"
    finally:
        subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(data.parent, ignore_errors=True)
