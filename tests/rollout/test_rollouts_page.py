"""The rollouts page in a real browser (Debian's chromium through playwright): opened while a
rollout runs, it follows it live, and its numbers end equal to the fleet's ground truth."""

import re
import time
from collections import Counter

from rig.fleet.control import choose
from tests.rollout.scenario import pol


def test_the_page_follows_a_rollout_and_matches_the_ground_truth(fleet_lab, dashboard, page):
    lab = fleet_lab(60, seed=12)
    truth = lab.truth()
    l0 = sorted(i for i, t in truth.items() if t["variant"] == "stm32l0")
    lab.fleet.inject("boot-fail", choose(l0, 0.5, 12, "boot-fail"))
    url = dashboard("--fleet", lab.fleet.folder, "--rollouts", lab.db)
    page.goto(url + "/rollouts")
    assert page.locator("#versions").is_visible()
    rid = lab.start(lab.release("2.0.0"), pol(gates={"min_judged": 2}))
    others = [i for i, t in truth.items() if t["variant"] != "stm32l0"]
    lab.wait(lambda t: all(t[i]["running"] == "2.0.0" for i in others), 40, "esp32 and stm32h7 updated")
    time.sleep(1.0)
    truth = lab.truth()
    expected = Counter((t["variant"], t["running"], str(bool(t["confirmed"])).lower()) for t in truth.values())

    def shown():
        cells = page.locator("#versions td[data-variant]")
        out = Counter()
        for i in range(cells.count()):
            c = cells.nth(i)
            out[(c.get_attribute("data-variant"), c.get_attribute("data-version"),
                 c.get_attribute("data-confirmed"))] += int(c.inner_text())
        return out

    deadline = time.monotonic() + 15
    while shown() != expected and time.monotonic() < deadline:  # no reload: the page updates itself
        time.sleep(0.3)
    assert shown() == expected
    halt = page.locator(f"#rollout-{rid} li[data-kind=halt]")
    assert re.search(r"stm32l0 canary halted: error ratio \d+/\d+", halt.inner_text())
    updated = sum(n for (_, version, _), n in expected.items() if version == "2.0.0")
    succeeded = page.locator(f"#rollout-{rid} td[data-count=succeeded]")
    assert sum(int(succeeded.nth(i).inner_text()) for i in range(succeeded.count())) == updated
