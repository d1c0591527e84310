"""`rig ota` campaigns are runs of the results store: each verdict a result with its read-back."""

from tests.results.conftest import private_rack


def test_an_ota_campaign_is_recorded_with_its_verdicts(sessions, tmp_path):
    rack = private_rack(tmp_path / "rack.yaml", ("esp32-1",))
    try:
        done = sessions.rig("ota", "--rack", rack, "--board", "esp32-1", "--scenario", "crash on boot",
                            "--results", sessions.url, "--work", tmp_path / "ota", timeout=600)
    finally:
        sessions.rig("lab", "down", "--rack", rack)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert f"recorded as run 1 in {sessions.url}" in done.stdout
    store = sessions.store()
    (run,) = store.runs()
    assert (run["kind"], run["status"], run["rack"]) == ("ota", "passed", str(rack))
    assert run["command"].startswith("rig ota --rack")
    (result,) = store.results(run["id"])
    assert (result["board"], result["scenario"], result["expected"], result["observed"]) == (
        "esp32-1", "crash on boot", "rolled back", "rolled back")
    assert "rolled back to 1" in result["rollbacks"] and result["read_back"]
    assert result["wire_bytes"] > 0 and "rig: boot" in result["console"]
