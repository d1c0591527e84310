"""`rig provision run` on the whole virtual rack, as an operator runs it: every board provisioned,
a second run refuses them, --force provisions them again and the records keep every attempt, which
`rig provision status` and `export` show - and the keys the devices hold are nowhere but in the
device (tests/provision/key_search.py: read back from each device, searched for in everything the
station wrote; the STM32s are left open for that, rdp=0)."""

import csv
import io
import json

from cryptography import x509
from cryptography.x509.oid import NameOID

from rig.provision.identity import fingerprint
from rig.results.store import Store
from tests.labs import bound_rack
from tests.provision.key_search import leaks, read_back
from tests.provision.station_lab import BOARDS, OPEN, check_consistent


def test_provision_refuse_then_force_keeps_the_history(station_lab, tmp_path):
    workdir = tmp_path / "station"
    db = workdir / "provisioning.db"
    batches = ("--results", f"sqlite:///{tmp_path / 'results.db'}")  # each run is a batch in the results store

    first = station_lab.provision(workdir, *OPEN, *batches)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "station: made the provisioning CA key" in first.stdout
    assert "station: made the CA certificate" in first.stdout
    for board in BOARDS:
        assert f"{board}: identify ..." in first.stdout and f"{board}: provisioned as RIG-" in first.stdout
    assert "3 provisioned, 0 refused, 0 failed" in first.stdout

    second = station_lab.provision(workdir, "--fixtures", "3", *OPEN, *batches)
    assert second.returncode == 1
    for board in BOARDS:
        assert f"{board}: refused: already provisioned as RIG-" in second.stdout
    assert "station: made" not in second.stdout  # the keys of the first run, kept

    third = station_lab.provision(workdir, "--force", "--fixtures", "2", *OPEN, *batches)
    assert third.returncode == 0, third.stdout + third.stderr
    store = Store(batches[1])
    runs = [(r["kind"], r["status"], r["counts"]["passed"], r["counts"]["skipped"]) for r in reversed(store.runs())]
    assert runs == [("provision", "passed", 3, 0), ("provision", "failed", 0, 3), ("provision", "passed", 3, 0)]
    refused = [r for r in store.results() if r["observed"] == "refused"]
    assert len(refused) == 3 and all("already provisioned" in r["message"] for r in refused)

    rows = check_consistent(db)
    assert len(rows["units"]) == 3 and len(rows["attempts"]) == 9
    ca = x509.load_pem_x509_certificate(next((workdir / "ca").glob("*.pem")).read_bytes())
    for unit in rows["units"]:
        attempts = [a for a in rows["attempts"] if a["chip_id"] == unit["chip_id"]]
        assert [(a["outcome"], bool(a["forced"])) for a in attempts] == [
            ("provisioned", False), ("refused", False), ("provisioned", True)]
        first_cert, last_cert = (x509.load_pem_x509_certificate(a["certificate"].encode())
                                 for a in (attempts[0], attempts[2]))
        assert attempts[0]["key_fingerprint"] != attempts[2]["key_fingerprint"]  # a new identity, same serial
        for cert in (first_cert, last_cert):
            cert.verify_directly_issued_by(ca)
            assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == unit["serial"]

    status = json.loads(station_lab.rig("provision", "status", "--db", f"sqlite:///{db}", "--json").stdout)
    assert status["counts"] == {"units": 3, "provisioned": 3, "attempts": 9, "provisioned_attempts": 6,
                                "refused_attempts": 3, "failed_attempts": 0}
    assert {u["last_attempt"]["outcome"] for u in status["units"]} == {"provisioned"}
    assert all(u["attempts"] == 3 and u["last_attempt"]["forced"] for u in status["units"])
    table = station_lab.rig("provision", "status", "--db", f"sqlite:///{db}")
    assert table.returncode == 0 and "3 units, 3 provisioned, 9 attempts" in table.stdout

    out = tmp_path / "attempts.csv"
    done = station_lab.rig("provision", "export", "--db", f"sqlite:///{db}", "--format", "csv", "-o", out)
    assert done.returncode == 0, done.stderr
    exported = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["outcome"] for r in exported].count("provisioned") == 6 and len(exported) == 9
    assert all(json.loads(r["steps"])[0]["name"] == "identify" for r in exported)
    audit = json.loads(station_lab.rig("provision", "export", "--db", f"sqlite:///{db}", "--audit").stdout)
    assert sorted({(a["action"], a["operator"], a["station"]) for a in audit}) == [
        ("provisioned", "tester", "station-test"), ("re-provisioned", "tester", "station-test"),
        ("refused", "tester", "station-test")]

    bound = bound_rack(station_lab.rack, station_lab.env["RIG_RUNTIME_DIR"])  # esptool needs the real console
    keys = {b.id: read_back(station_lab, b, tmp_path) for b in bound.boards}
    assert {fingerprint(k.public_key()) for k in keys.values()} == {
        a["key_fingerprint"] for a in rows["attempts"] if a["forced"]}  # the devices hold the last identities
    output = "".join(r.stdout + r.stderr for r in (first, second, third, done, table))
    assert not leaks(workdir, station_lab, output, keys, tmp_path)
