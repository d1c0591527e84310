"""`rig provision` input handling, in-process: every mistake is one line, exit status 2, and the
station writes nothing - no work folder, no key, no database, no lab started."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _repo_file(name: str) -> str:
    return str(REPO / name)


@pytest.fixture
def rig(rig_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the defaults (.rig/provision, .rig/lab) would land here
    (tmp_path / "rack.yaml").write_text((REPO / "targets" / "virtual-rack.yaml").read_text())
    (tmp_path / "boot.bin").write_bytes(bytes(64))
    return lambda *args: rig_cli("provision", *args)


@pytest.mark.parametrize("args,says", [
    (["--db", "nosuchdialect://x/y"], "records database URL 'nosuchdialect://x/y' is not usable"),
    (["--db", "not a url"], "is not usable"),
    (["--db", "sqlite:////nonexistent-folder/x/records.db"], "cannot be opened"),
    (["--rack", "missing.yaml"], "missing.yaml: no such targets file"),
    (["--option", "esp32.nope=1"], "the esp32 recipe has no option 'nope'"),
    (["--option", "stm32h7.rdp=locked"], "expected a whole number"),
    (["--option", "esp32.disable_download=maybe"], "expected true or false"),
    (["--option", "stm32h7-rdp=0"], "write VARIANT.NAME=VALUE"),
    (["--option", "nrf52.rdp=0"], "no provisioning recipe for variant 'nrf52'"),
    (["--ca-key", "missing.pem"], "missing.pem: cannot read key file"),
    (["--ca-cert", "missing.pem"], "--ca-cert missing.pem: no such file"),
    (["--bootloader", "stm32h7=missing.bin"], "no such file missing.bin"),
    (["--image", "h7=boot.bin"], "write VARIANT=FILE"),
    (["--board", "nope-1"], "no board 'nope-1'"),
    (["--tag", "no-such-tag"], "no board of rack.yaml has the tags no-such-tag"),
    (["--rack", _repo_file("targets/bench-example.yaml")], "is a real esp32: give its --bootloader esp32=FILE"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(rig, tmp_path, args, says):
    args = ["--rack", "rack.yaml", *args] if "--rack" not in args else args
    done = rig("run", *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[-1], done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boot.bin", "rack.yaml"]


@pytest.mark.parametrize("verb", [["status"], ["export", "--format", "csv"]])
def test_status_and_export_of_a_missing_database_say_so(rig, tmp_path, verb):
    done = rig(*verb, "--db", f"sqlite:///{tmp_path}/none.db")
    assert done.returncode == 2
    assert done.stderr.strip() == (f"rig: error: no records database at {tmp_path}/none.db; "
                                   "`rig provision run` makes it, or pass --db URL")
    assert not (tmp_path / "none.db").exists()


def test_help_teaches_with_examples(rig):
    for verb in (["--help"], ["run", "--help"], ["status", "--help"], ["export", "--help"]):
        done = rig(*verb)
        assert done.returncode == 0 and "rig provision" in done.stdout
    assert "sqlite:///.rig/provision/provisioning.db" in rig("run", "--help").stdout
