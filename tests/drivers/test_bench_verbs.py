"""rig flash / console / power / reset against the virtual rack, run as a user runs them."""

import json
import os

from rig.image import esp_app, factory


def test_flash_then_console_shows_the_new_app_booting(lab, tmp_path):
    args = []
    for region in factory.esp32_regions(esp_app.app_image("2.3.4")):  # bootloader, table, otadata, app
        path = tmp_path / f"{region.name}.bin"
        path.write_bytes(region.data)
        args.append(f"0x{region.offset:x}={path}")
    flashed = lab.rig("flash", "--rack", lab.rack, "--board", "esp32-1", *args)
    assert flashed.returncode == 0, flashed.stderr
    assert flashed.stdout.count("written and verified") == 4
    # The app marked its otadata entry VALID when it booted after flashing, so leave otadata out.
    again = lab.rig("flash", "--rack", lab.rack, "--board", "esp32-1", "--skip-unchanged",
                    *(arg for arg in args if "otadata" not in arg))
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("unchanged, skipped") == 3
    watched = lab.rig("console", "--rack", lab.rack, "--board", "esp32-1", "--power-cycle",
                      "--until", "rig: boot", "--timeout", "20")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "rst:0x1 (POWERON_RESET)" in watched.stdout  # console open before power came back
    assert "rig: boot variant=esp32 version=2.3.4+0" in watched.stdout


def test_flash_stm32_by_partition_with_progress(lab, tmp_path):
    image = tmp_path / "blob.bin"
    image.write_bytes(os.urandom(3000))
    flashed = lab.rig("flash", "--rack", lab.rack, "--board", "stm32l0-1", "--partition", "slot1", image)
    assert flashed.returncode == 0, flashed.stderr
    assert "3000 bytes written and verified at 0x1b000 (PyOCDDriver)" in flashed.stdout


def test_power_and_reset_verbs(lab):
    def power_of(board_id):
        status = json.loads(lab.rig("lab", "status", "--json", "--rack", lab.rack).stdout)
        return next(b["power"] for b in status["boards"] if b["id"] == board_id)

    off = lab.rig("power", "off", "--rack", lab.rack, "--board", "stm32h7-1")
    assert off.returncode == 0, off.stderr
    assert power_of("stm32h7-1") == "off"
    cycled = lab.rig("reset", "--power", "--rack", lab.rack, "--board", "stm32h7-1")
    assert cycled.returncode == 0, cycled.stderr
    assert power_of("stm32h7-1") == "on"


def test_bad_input_is_one_line_and_exit_2(lab, tmp_path):
    image = tmp_path / "big.bin"
    image.write_bytes(bytes(200 * 1024))
    small = tmp_path / "small.bin"
    small.write_bytes(bytes(16))
    cases = [
        (("flash", "--board", "nope", image), "no board 'nope'"),
        (("flash", "--board", "stm32l0-1", image), "partition slot0 holds"),
        (("flash", "--board", "esp32-1", f"0x1000={small}", f"0x1100={small}"), "share the 0x1000-byte sector"),
    ]
    for args, message in cases:
        done = lab.rig(args[0], "--rack", lab.rack, *args[1:])
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.startswith("rig: error: ") and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_board_held_by_a_test_is_refused_by_the_bench(lab, rack):
    from rig.lab import leases

    board = rack.board("stm32h7-1")
    with leases.acquire(board.id, holder="pytest gw7", where=board.console):
        done = lab.rig("power", "cycle", "--rack", lab.rack, "--board", "stm32h7-1")
    assert done.returncode == 2
    assert "board stm32h7-1 is in use by pytest gw7" in done.stderr
