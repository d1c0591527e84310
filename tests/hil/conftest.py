"""The HIL suite: runs on any rack, virtual or real, through rig's pytest plugin.

    pytest tests/hil --rig-rack targets/virtual-rack.yaml [-n 3] [--junitxml report.xml]

Tests read boards only as a bench engineer can: console lines, flash read back through the
board's own flasher, debug-probe registers. Nothing here imports rig.sim.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rig.image import esp_app, factory
from rig.image.layouts import LAYOUTS
from rig.lab import Board, load_rack
from rig.ota.kit import CampaignKit
from rig.pytest_plugin import rack_path
from rig.variants import Bootloader
from tests.labs import lab_rack


def pytest_ignore_collect(collection_path, config):
    """Run only on a rack asked for: with --rig-rack/--lg-env/$RIG_RACK, or `pytest tests/hil`.

    A plain `pytest` of the whole tree must not take over the shared default rack's boards and
    ports; tests/drivers/test_hil_suite.py runs this suite there on a private rack instead.
    """
    here = Path(__file__).parent
    named = any(here == Path(arg.split("::")[0]).resolve() or here in Path(arg.split("::")[0]).resolve().parents
                for arg in config.args)
    rack = config.getoption("--rig-rack") or getattr(config.option, "lg_env", None) or "RIG_RACK" in os.environ
    return None if named or rack else True


def pytest_xdist_make_scheduler(config, log):
    """Under xdist's default (load) scheduling, a shared board's tests go to one worker as a whole -
    xdist's loadscope scheduling with the board the test id names as the scope - and the side-lab
    tests to whichever worker runs short. With plain load scheduling, workers sat for half a minute
    in the `board` fixture, queued for the lease of a board another worker was using."""
    if config.getvalue("dist") != "load" or config.getoption("--rig-coordinator"):
        return None  # another scheduling asked for, or boards that are places: xdist's own
    from xdist.scheduler import LoadScopeScheduling

    boards = [b.id for b in load_rack(rack_path(config)).boards]

    class ByBoard(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            params = nodeid.rpartition("[")[2].rstrip("]")  # the board's id comes first (rig's plugin)
            return next((b for b in boards if params == b or params.startswith(f"{b}-")), nodeid)

    return ByBoard(config, log)


# A partition a board's tests may overwrite freely: never the one the app boots from, but the
# slot its boot chain stages an update in (MCUboot's secondary slot; ESP-IDF's other OTA slot).
SCRATCH = {Bootloader.MCUBOOT: "slot1", Bootloader.ESP_IDF: "ota_1"}


@pytest.fixture
def scratch(board):
    """(offset, size) of the board's scratch partition."""
    part = LAYOUTS[board.board.flash_layout].part(SCRATCH[board.board.facts.bootloader])
    return part.offset, part.size


@pytest.fixture(scope="session")
def esp32_regions():
    """Bootloader, partition table, otadata and a rig app 1.2.0 in ota_0: a bootable ESP32."""
    return factory.esp32_regions(esp_app.app_image("1.2.0"))


@pytest.fixture
def esp32_app(board, esp32_regions):
    """The ESP32 board with the reference app in place (written only where flash differs)."""
    board.ensure([(region.offset, region.data) for region in esp32_regions])
    return board


@pytest.fixture(scope="session")
def ota_kit(request, rig_lab, tmp_path_factory):
    """Keys, an OTA server on loopback and the lab's instruments, for this test process."""
    with CampaignKit(rack_path(request.config), tmp_path_factory.mktemp("ota")) as kit:
        yield kit


@pytest.fixture(scope="session")
def side_labs(request, rig_rack, rig_pool, tmp_path_factory):
    """side_labs(name, env, variant, defect=None) -> (CampaignKit, board): a private lab of the rack's
    `variant` board alone, started with `env` added to `rig lab up`'s environment; `defect` makes the
    kit's STM32 releases that defect build (rig.sim.broken.Breakage). For what must not touch the
    shared boards: broken boards, and scenarios that burn a board's anti-rollback floor.

    Only the board a test uses is brought up (a lab's start and its idle boards cost CPU the other
    workers need), and a process runs one side lab at a time: asking for another stops it. Tests
    on the same side lab share it when they run one after the other (test_broken_models.py orders
    its pairings by lab); the last one stops at the end of the session."""
    if request.config.getoption("--rig-coordinator"):
        pytest.skip("side labs are private copies of a local rack file; boards through a coordinator have none")
    folder = tmp_path_factory.mktemp("side-labs")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    running: dict[tuple[str, str], tuple[CampaignKit, Board]] = {}  # (name, variant) -> its lab's kit, board
    stopping: dict[tuple[str, str], subprocess.Popen] = {}  # (name, variant) -> its `rig lab down`

    def stop(key: tuple[str, str]) -> None:
        kit, board = running.pop(key)
        if rig_pool.held == board.id:  # its connections closed while the lab still serves them
            rig_pool.release()
        kit.__exit__(None, None, None)
        # In the background: the next test's lab starts meanwhile.
        stopping[key] = subprocess.Popen([sys.executable, "-m", "rig", "lab", "down", "--rack", str(kit.rack)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def lab(name: str, env: dict[str, str], variant: str, defect: str | None = None) -> tuple[CampaignKit, Board]:
        key = (name, variant)
        if key not in running:
            for other in list(running):
                stop(other)
            if key in stopping:  # the same lab again: its last stop must be over, or `up` finds it up
                stopping.pop(key).wait()
            if not any(b.variant == variant for b in rig_rack.boards):
                pytest.skip(f"{rack_path(request.config)} has no {variant} board to copy")
            label = f"{name}-{variant}-{worker}"
            rack = str(lab_rack(folder, rack_path(request.config), name=label, variants=(variant,)))
            up = subprocess.run([sys.executable, "-m", "rig", "lab", "up", "--rack", rack, "--state",
                                 str(folder / f"state-{label}")], env=dict(os.environ, **env),
                                capture_output=True, text=True)
            assert up.returncode == 0, f"side lab {label} did not start: {up.stderr.strip()}"
            kit = CampaignKit(rack, folder / f"work-{label}", defect=defect).__enter__()
            running[key] = kit, load_rack(rack).boards[0]
        return running[key]

    yield lab
    for key in list(running):
        stop(key)
    for proc in stopping.values():
        proc.wait()
