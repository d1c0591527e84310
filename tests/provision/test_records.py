"""The records database: one transaction per unit, history kept, nothing half-written."""

import signal
import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import create_engine, text

from rig.errors import RigError
from rig.provision.records import Records, UnitRecord, now


def unit(chip="CHIP-1", outcome="provisioned", forced=False, fingerprint="fp-1", serial="RIG-0001"):
    t = now()
    return UnitRecord(chip_id=chip, variant="stm32h7", outcome=outcome, operator="ana", station="st-1",
                      started_at=t, finished_at=t, serial=serial, forced=forced, key_fingerprint=fingerprint,
                      certificate="-----BEGIN CERTIFICATE-----\n...", lock_state={"rdp": 1},
                      steps=[{"name": "identify", "ok": True, "seconds": 0.1, "measurements": {"uid": chip}}])


@pytest.fixture(params=["sqlite", "postgresql"])
def records(request, tmp_path):
    if request.param == "sqlite":
        return Records(f"sqlite:///{tmp_path / 'records.db'}")
    url = request.getfixturevalue("postgres_url")
    r = Records(url)
    with r.engine.begin() as c:  # the server lives for the session: start each test empty
        c.execute(text("TRUNCATE attempts, audit, units"))
    return r


def test_provision_refuse_and_force_keep_history(records):
    records.save(unit())
    assert records.provisioned("CHIP-1")["serial"] == "RIG-0001"
    with pytest.raises(RigError, match="already provisioned as RIG-0001; re-provision with --force"):
        records.save(unit(fingerprint="fp-2"))
    records.save(unit(outcome="refused", fingerprint=None))
    records.save(unit(forced=True, fingerprint="fp-3", serial="ignored"))
    history = records.history("CHIP-1")
    assert [h["outcome"] for h in history] == ["provisioned", "refused", "provisioned"]
    assert {h["serial"] for h in history} == {"RIG-0001"}  # a re-provisioned unit keeps its serial
    assert [a["action"] for a in records.audit_log()] == ["provisioned", "refused", "re-provisioned"]
    assert history[0]["steps"][0]["measurements"] == {"uid": "CHIP-1"}


def test_an_identity_is_never_given_twice(records):
    records.save(unit())
    with pytest.raises(RigError, match="identity or serial given twice"):
        records.save(unit(chip="CHIP-2", serial="RIG-0002"))  # same key fingerprint
    assert records.provisioned("CHIP-2") is None
    assert len(records.audit_log()) == 1  # the refused transaction left nothing behind


def test_exports(records):
    records.save(unit())
    assert '"chip_id": "CHIP-1"' in records.export("json")
    csv_text = records.export("csv")
    assert csv_text.splitlines()[0].startswith("id,serial,chip_id")
    assert '"{""rdp"": 1}"' in csv_text
    with pytest.raises(RigError, match="choose csv or json"):
        records.export("xml")


def test_bad_urls_are_one_line():
    with pytest.raises(RigError, match="is not usable"):
        Records("nosuchdb://x")
    with pytest.raises(RigError, match="cannot be opened"):
        Records("sqlite:////nonexistent/dir/x.db")


def test_killing_the_station_mid_write_never_leaves_half_a_record(tmp_path):
    """SIGKILL a writer at several moments; every attempt row must have its unit and audit rows."""
    db = tmp_path / "records.db"
    writer = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})
        from test_records import unit
        from rig.provision.records import Records
        r = Records("sqlite:///{db}")
        print("ready", flush=True)
        i = 0
        while True:
            i += 1
            r.save(unit(chip=f"C{{i}}", fingerprint=f"fp{{i}}", serial=f"S{{i}}"))
    """)
    for delay in (0.05, 0.2, 0.4):
        proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "ready\n"
        time.sleep(delay)  # lets some units complete: when the kill lands is what varies, not what is asserted
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with create_engine(f"sqlite:///{db}").connect() as c:
            n_units = c.execute(text("select count(*) from units")).scalar()
            n_attempts = c.execute(text("select count(*) from attempts")).scalar()
            n_audit = c.execute(text("select count(*) from audit")).scalar()
            orphans = c.execute(text("select count(*) from attempts a left join units u on a.serial = u.serial "
                                     "where u.serial is null")).scalar()
        assert n_units == n_attempts == n_audit
        assert orphans == 0
        db.unlink()
