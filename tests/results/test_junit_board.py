"""A JUnit file's board: rig writes the `board` property; files from before it carry `board_id`,
and `rig results import` reads either into the same column."""

from rig.results.junit import read_cases

CASE = ('<testsuite name="pytest"><testcase classname="tests.hil.test_boot" name="{name}" time="1.5">'
        '<properties><property name="{prop}" value="esp32-1"/></properties></testcase></testsuite>')


def test_the_board_is_read_from_board_or_from_the_older_board_id(tmp_path):
    for prop in ("board", "board_id"):
        path = tmp_path / f"{prop}.xml"
        path.write_text(CASE.format(name=f"test_boots[{prop}]", prop=prop))
        _, (row,) = read_cases(path)
        assert row["board"] == "esp32-1", prop
