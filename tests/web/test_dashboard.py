"""The dashboard as a person sees it: `rig dashboard` served, opened in headless chromium."""

import os

import yaml

from rig.results.store import Store

REPO_RACK = os.path.join(os.path.dirname(__file__), "..", "..", "targets", "virtual-rack.yaml")


def test_lab_page_lists_the_racks_boards_with_health_and_quarantine(dashboard, page, tmp_path):
    rack = tmp_path / "rack.yaml"
    rack.write_text(open(REPO_RACK).read())
    url = f"sqlite:///{tmp_path / 'results.db'}"
    store = Store(url)
    store.add_health_check("stm32h7-1", "stm32h7", True, None, [{"name": "probe", "ok": True}])
    store.add_health_check("esp32-1", "esp32", False, "banner: nothing on the console within 10 s", [])
    store.close()
    env = dict(os.environ, RIG_RUNTIME_DIR=str(tmp_path / "runtime"))
    page.goto(dashboard("--rack", rack, "--results", url, env=env) + "/")
    assert page.url.endswith("/lab")
    rows = {r.get_attribute("data-board"): r for r in page.locator("#boards tr[data-board]").all()}
    assert sorted(rows) == sorted(yaml.safe_load(rack.read_text())["targets"])
    assert "quarantined" in rows["esp32-1"].inner_text() and "banner" in rows["esp32-1"].inner_text()
    assert "in service" in rows["stm32h7-1"].inner_text() and "ok at" in rows["stm32h7-1"].inner_text()
    assert "not checked" in rows["stm32l0-1"].inner_text()
    assert "virtual lab not running" in page.inner_text("main")
    # The stylesheet is the dashboard's own: the page needs nothing from outside.
    assert page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor") == "rgb(29, 39, 51)"


def test_a_bad_results_url_is_one_line(tmp_path):
    import subprocess

    from tests.browser import RIG

    result = subprocess.run([RIG, "dashboard", "--results", "nosuchdb://x"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "results store URL" in result.stderr
