"""Boards boot with the console already listening, so the first line after power-on is seen."""

import pytest


@pytest.mark.rig_board(variant="esp32")
def test_cold_boot_shows_rom_banner_and_app_boot_line(esp32_app, console):
    mark = console.mark()
    boot = esp32_app.strategy.power_on_to_app()
    assert boot["variant"] == "esp32"
    assert boot["version"] == "1.2.0+0"
    assert boot["reset"] == "power-on"
    assert boot["boots"] == "1"
    # The ROM prints its reset reason first thing after power-on; only an open console sees it.
    assert "rst:0x1 (POWERON_RESET)" in console.text_since(mark)
    console.expect_line(r"rig: alive uptime=\d+", timeout=5)


@pytest.mark.rig_board(variant="esp32")
def test_en_line_reset_reboots_the_app(esp32_app, console):
    esp32_app.strategy.transition("app")
    esp32_app.target.activate(esp32_app.reset)  # the reset drains the console while EN is low
    esp32_app.reset.reset()
    console.expect_line(r"rig: boot variant=esp32 .*slot=0", timeout=10)


@pytest.mark.rig_board(variant="esp32")
def test_a_failing_step_is_retried_after_a_power_cycle(esp32_app, console, board_retry):
    esp32_app.strategy.transition("app")
    attempts = []

    def flaky_step():
        attempts.append(console.mark())
        if len(attempts) == 1:
            raise AssertionError("the first attempt fails, as a marginal cable would")
        return console.text_since(attempts[0])

    seen = board_retry(flaky_step)
    assert len(attempts) == 2
    assert "rig: boot variant=esp32" in seen  # the power cycle between the attempts booted the app


@pytest.mark.rig_board(variant="stm32h7")
def test_probe_halts_and_resumes_the_core_and_reads_rdp(board):
    board.target.activate(board.swd)
    board.swd.halt()
    board.swd.resume()
    assert board.swd.read_rdp_level() == 0
