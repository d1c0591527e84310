"""Where the station keeps things other than in its work folder: the CA key on an HSM (SoftHSM2 over
PKCS#11, which then makes the device keys too, as session objects it never stores), and the records
in a real PostgreSQL server."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import create_engine, text

from rig.provision.records import Records
from tests.provision.station_lab import check_consistent

MODULE = "/usr/lib/softhsm/libsofthsm2.so"  # Debian softhsm2 (.ci/setup installs it)
HSM_TOOL = Path(__file__).resolve().parents[1] / "image" / "hsm_tool.py"
CA_URI = f"pkcs11:token=rig;object=fw-key?module-path={MODULE}&pin-source=env:RIG_PKCS11_PIN"
# Run in a process of its own: SoftHSM reads SOFTHSM2_CONF once per process.
LIST_OBJECTS = """
import json, sys, pkcs11
with pkcs11.lib(sys.argv[1]).get_token(token_label="rig").open(user_pin="1234") as s:
    print(json.dumps(sorted([o.object_class.name, o[pkcs11.Attribute.LABEL]] for o in s.get_objects())))
"""


@pytest.fixture
def token(tmp_path):
    if not shutil.which("softhsm2-util") or not os.path.exists(MODULE):
        message = "SoftHSM2 not installed (Debian package softhsm2; .ci/setup installs it)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {"SOFTHSM2_CONF": str(conf), "RIG_PKCS11_PIN": "1234"}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "rig", "--pin", "1234", "--so-pin", "5678"],
                   env={**os.environ, **env}, check=True, capture_output=True)
    subprocess.run([sys.executable, HSM_TOOL, MODULE, "genkeys"], env={**os.environ, **env}, check=True)
    return env


def token_objects(env) -> list:
    done = subprocess.run([sys.executable, "-c", LIST_OBJECTS, MODULE], env={**os.environ, **env},
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_ca_key_and_device_keys_on_the_hsm(station_lab, tmp_path, token):
    before = token_objects(token)
    workdir = tmp_path / "station"
    done = station_lab.provision(workdir, "--tag", "mcuboot", "--ca-key", CA_URI, env=token)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "made the CA certificate of pkcs11:token=rig;object=fw-key" in done.stdout
    assert not (workdir / "ca-key.pem").exists()
    rows = check_consistent(workdir / "provisioning.db")
    ca = x509.load_pem_x509_certificate(next((workdir / "ca").glob("*.pem")).read_bytes())
    assert len(rows["attempts"]) == 2
    for a in rows["attempts"]:
        identity = next(s for s in json.loads(a["steps"]) if s["name"] == "identity")
        assert identity["measurements"]["key_source"].startswith("pkcs11:token=rig;object=fw-key")
        x509.load_pem_x509_certificate(a["certificate"].encode()).verify_directly_issued_by(ca)
    assert token_objects(token) == before  # device keys were session objects, destroyed once read


def test_records_in_postgresql(station_lab, tmp_path, postgres_url):
    with Records(postgres_url).engine.begin() as c:  # the server lives for the session: start empty
        c.execute(text("TRUNCATE attempts, audit, units"))
    workdir = tmp_path / "station"
    first = station_lab.provision(workdir, "--tag", "mcuboot", "--db", postgres_url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "records in postgresql+psycopg://rig@/records" in first.stdout
    assert not (workdir / "provisioning.db").exists()
    second = station_lab.provision(workdir, "--tag", "mcuboot", "--db", postgres_url)
    assert second.returncode == 1 and second.stdout.count(": refused: already provisioned as") == 2
    status = json.loads(station_lab.rig("provision", "status", "--db", postgres_url, "--json").stdout)
    assert status["counts"] == {"units": 2, "provisioned": 2, "attempts": 4, "provisioned_attempts": 2,
                                "refused_attempts": 2, "failed_attempts": 0}
    with create_engine(postgres_url).connect() as c:
        assert c.execute(text("SELECT count(*) FROM audit")).scalar() == 4
