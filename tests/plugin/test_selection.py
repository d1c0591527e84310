"""Board selection: every matching board of the rack becomes one test, chosen by marker or option."""

import pytest

INNER = """
import pytest

def test_any(board):
    assert board.board.id

@pytest.mark.rig_board(variant="stm32h7")
def test_h7(board):
    assert board.board.variant == "stm32h7"

@pytest.mark.rig_board(tags=["smp"])
def test_smp(board):
    assert "smp" in board.board.tags

@pytest.mark.rig_board(variant="esp32", tags=["nope"])
def test_nothing_matches(board):
    raise AssertionError("must not run")
"""


def test_tests_run_once_per_matching_board(run):
    rack = run.rack(run.board("h7-a", "stm32h7", ["smp"]), run.board("h7-b", "stm32h7"),
                    run.board("esp-a", "esp32", ["wifi"]))
    result = run.pytest(run.module(INNER), "--rig-rack", rack, "-v", "-rs")
    out = result.stdout.str()
    for test_id in ("test_any[h7-a]", "test_any[h7-b]", "test_any[esp-a]", "test_h7[h7-a]", "test_h7[h7-b]",
                    "test_smp[h7-a]"):
        assert f"{test_id} PASSED" in out, out
    assert "test_h7[esp-a]" not in out and "test_smp[h7-b]" not in out
    assert "test_nothing_matches[no-board] SKIPPED" in out
    assert "matches variant=esp32 tags=['nope']" in out
    result.assert_outcomes(passed=6, skipped=1)


def test_rig_board_option_narrows_to_named_boards(run):
    rack = run.rack(run.board("h7-a", "stm32h7"), run.board("h7-b", "stm32h7"))
    result = run.pytest(run.module(INNER), "--rig-rack", rack, "--rig-board", "h7-b", "-v", "-k", "test_any")
    assert "test_any[h7-b] PASSED" in result.stdout.str()
    assert "h7-a" not in result.stdout.str()
    result.assert_outcomes(passed=1)


def test_a_broken_rack_is_a_usage_error_in_one_line(run):
    rack = run.rack("  bad:\n    resources:\n      RigBoard:\n        variant: esp33\n"
                    "      NetworkSerialPort: {host: 127.0.0.1, port: 9}\n")
    result = run.pytest(run.module(INNER), "--rig-rack", rack)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown variant 'esp33'" in result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_labgrid_lg_env_names_the_rack_too(run):
    rack = run.rack(run.board("h7-a", "stm32h7"))
    result = run.pytest(run.module(INNER), "--lg-env", rack, "-v", "-k", "test_any")
    assert "test_any[h7-a] PASSED" in result.stdout.str(), result.stdout.str()
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("option", ["-k", "-m"])
def test_a_wrong_selection_expression_under_xdist_is_pytest_s_own_one_line(run, option):
    # xdist's workers find it after collection and the controller reported an INTERNALERROR that
    # blamed a worker crash on the first test (pytest-xdist #539)
    rack = run.rack(run.board("h7-a", "stm32h7"))
    result = run.pytest(run.module(INNER), "--rig-rack", rack, "-n", "2", option, "words with spaces")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ERROR: Wrong expression passed to '{option}': words with spaces: at column 7" in result.stderr.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
