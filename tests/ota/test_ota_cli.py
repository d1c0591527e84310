"""`rig ota` input handling through the `rig` entry point, in-process: every mistake is one line
and exit status 2, found before any board is touched. (The campaigns themselves run in tests/hil.)"""


import pytest


@pytest.fixture
def rig(rig_cli):
    return lambda *args: rig_cli("ota", *args)


def test_list_names_every_scenario_and_the_boards_it_fits(rig):
    done = rig("--list")
    assert done.returncode == 0
    for name in ("crash on boot", "wrongly signed image", "delta patch", "ten updates in a row"):
        assert name in done.stdout
    assert "STM32 (MCUboot)" in done.stdout and "ESP32 (HTTP)" in done.stdout


@pytest.mark.parametrize("args,says", [
    (["--scenario", "no such thing"], "no scenario 'no such thing'"),
    (["--board", "esp32-1", "--scenario", "wrongly signed image"], "does not fit esp32-1"),
    (["--fault", "explode@40%"], "unknown fault 'explode'"),
    (["--fault", "drop@forty"], "expected KIND@BYTE or KIND@PERCENT%"),
    (["--cut", "cut@moon:1"], "power-cut trigger 'cut@moon:1'"),
    (["--board", "nope-1"], "nope-1"),
    (["--mcuboot", "stm32h7"], "--mcuboot 'stm32h7': expected VARIANT=FILE"),
])
def test_bad_input_is_one_line_and_exit_2(rig, args, says):
    done = rig(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rig: error: "), done.stderr
    assert says in lines[0]
    assert "Traceback" not in done.stderr + done.stdout
