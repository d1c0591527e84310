"""A real browser for page tests: Debian's chromium, headless, driven by playwright; and the
dashboard served by `rig dashboard` as a user starts it.

Fixtures (import them into a test folder's conftest.py):
    page        a fresh chromium page; at the end of the test a full-page screenshot is kept under
                the test's tmp path and named in the report (`screenshot` property in JUnit)
    dashboard   dashboard(*args, env=None) -> base URL of `rig dashboard --port 0 ARGS` (the port it
                bound, from its first line), stopped after the test
Launch arguments as BOARD.md fixes them: nothing is downloaded, no network beyond loopback.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
RIG = str(Path(sys.executable).parent / "rig")


@pytest.fixture(scope="module")  # not longer: playwright's sync API keeps an event loop running in this
def browser():                    # thread, and a later test's asyncio.run() (smpclient) would refuse to start
    if not shutil.which(CHROMIUM):
        message = "Debian chromium is not installed (.ci/setup installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(request, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    yield tab
    shot = tmp_path / f"{request.node.name.replace('/', '_')[:80]}.png"
    try:
        tab.screenshot(path=str(shot), full_page=True)
        request.node.user_properties.append(("screenshot", str(shot)))
    finally:
        context.close()


@pytest.fixture
def dashboard(tmp_path):
    started = []

    def serve(*args, env=None, cwd=None):
        proc = subprocess.Popen([RIG, "dashboard", "--port", "0", *map(str, args)], cwd=cwd or tmp_path,
                                env=env or os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        started.append(proc)
        first = proc.stdout.readline()  # "rig dashboard on http://127.0.0.1:PORT/ ...", printed once it listens
        bound = re.search(r"http://127\.0\.0\.1:\d+", first)
        if bound is None:
            proc.kill()
            raise AssertionError(f"the dashboard did not start ({proc.wait()}): {first}{proc.stderr.read()}")
        return bound.group(0)

    yield serve
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
