"""What the pages and `rig results flaky` compute from the store: flaky tests, provisioning figures."""

from rig.results import views


def record(store, revision, rows, kind="pytest"):
    run_id = store.start_run(kind, revision=revision)
    for row in rows:
        store.add_result(run_id, **{"duration": 1.0, **row})
    store.finish_run(run_id)
    return run_id


def test_flaky_lists_retried_passes_and_flipping_verdicts_with_their_history(sessions):
    store = sessions.store()
    steady = {"test_id": "t.py::test_steady[esp32-1]", "board": "esp32-1", "outcome": "passed"}
    flipper = {"test_id": "t.py::test_flips[esp32-1]", "board": "esp32-1"}
    retried = {"test_id": "t.py::test_retried[stm32h7-1]", "board": "stm32h7-1", "outcome": "passed"}
    record(store, "aaa", [steady, {**flipper, "outcome": "passed"}, retried])
    record(store, "aaa", [steady, {**flipper, "outcome": "failed"}, {**retried, "retries": 1}])
    record(store, "bbb", [steady, {**flipper, "outcome": "failed"}, retried])  # another revision: no flip of its own
    found = {f["test_id"]: f for f in views.flaky(store)}
    assert set(found) == {"t.py::test_flips[esp32-1]", "t.py::test_retried[stm32h7-1]"}
    assert found["t.py::test_flips[esp32-1]"]["reasons"] == ["verdict flipped 1 time over 2 runs of revision aaa"]
    assert [h["outcome"] for h in found["t.py::test_flips[esp32-1]"]["history"]] == ["failed", "failed", "passed"]
    assert found["t.py::test_retried[stm32h7-1]"]["reasons"] == ["passed after 1 retry in run 2"]
    listed = sessions.rig("results", "flaky", "--results", sessions.url)
    assert listed.returncode == 0
    assert "t.py::test_flips[esp32-1] on esp32-1: verdict flipped 1 time" in listed.stdout
    assert "(newest first: FFP)" in listed.stdout


def test_provisioning_counts_units_per_hour_refusals_and_fixtures(sessions):
    store = sessions.store()
    unit = {"test_key": "provision esp32", "variant": "esp32"}
    record(store, None, [
        {**unit, "test_id": "esp32-1: RIG-1", "board": "esp32-1", "outcome": "passed", "observed": "provisioned",
         "duration": 30.0},
        {**unit, "test_id": "esp32-2: RIG-2", "board": "esp32-2", "outcome": "passed", "observed": "provisioned",
         "duration": 60.0},
        {**unit, "test_id": "esp32-3: 0xabc", "board": "esp32-3", "outcome": "skipped", "observed": "refused",
         "message": "already provisioned as RIG-0"},
    ], kind="provision")
    data = views.provisioning(store)
    (batch,) = data["batches"]
    assert (batch["units"], batch["provisioned"], batch["refused"], batch["failed"]) == (3, 2, 1, 0)
    assert batch["per_hour"] > 0
    fixtures = {f["board"]: f for f in data["fixtures"]}
    assert fixtures["esp32-1"]["per_hour"] == 120.0 and fixtures["esp32-2"]["per_hour"] == 60.0
    assert [r["message"] for r in data["refusals"]] == ["already provisioned as RIG-0"]
