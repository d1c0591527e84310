"""Broken inventory files: each problem is one line naming the file, the board and the field."""

import subprocess
import sys
import textwrap

import pytest

from rig.errors import RigErrors
from rig.lab import load_rack

HEAD = "imports: [rig.lab.resources]\ntargets:\n"
# These racks are only read, never served: a console port the lab would choose (0), or where two
# boards must share one, port 9 (discard), as the outlets' URLs use it - a port no lab binds.
SHARED_PORT = 9


def board(name="b1", variant="esp32", port=0, outlet=0, extra=""):
    return textwrap.indent(textwrap.dedent(f"""\
        {name}:
          resources:
            RigBoard: {{variant: {variant}}}
            NetworkSerialPort: {{host: 127.0.0.1, port: {port}}}
            NetworkPowerPort: {{model: simplerest, host: "http://127.0.0.1:9/{{index}}/{{value}}", index: {outlet}}}
        """) + extra, "  ")


PROBE = "    RigDebugProbe: {unique_id: X1, target_type: stm32h743xx}\n"

CASES = {
    "yaml syntax": (HEAD + "  b1: {resources: {}}}\n", "rack.yaml:3:", "YAML syntax error"),
    "unknown variant": (HEAD + board(variant="esp33"), "board b1: RigBoard.variant", "did you mean 'esp32'"),
    "missing serial port": (
        HEAD + "  b1:\n    resources:\n      RigBoard: {variant: esp32}\n",
        "board b1: console", "missing serial port",
    ),
    "two boards on one outlet": (
        HEAD + board("b1") + board("b2"), "board b2: NetworkPowerPort", "outlet already used by board b1",
    ),
    "duplicate board id": (HEAD + board("b1") + board("b1", outlet=1), "duplicate key 'b1'", "line"),
    "stm32 without probe": (HEAD + board(variant="stm32h7"), "board b1: RigDebugProbe", "missing"),
    "unknown resource": (
        HEAD + board(extra="    NetworkSerialPrt: {host: a, port: 1}\n"),
        "board b1: NetworkSerialPrt", "did you mean 'NetworkSerialPort'",
    ),
    "unknown field": (
        HEAD + board(variant="stm32h7", extra="    RigDebugProbe: {uniqe_id: X, target_type: t}\n"),
        "board b1: RigDebugProbe", "unknown field 'uniqe_id'",
    ),
    "missing field": (
        HEAD + board(variant="stm32h7", extra="    RigDebugProbe: {target_type: t}\n"),
        "board b1: RigDebugProbe", "missing field 'unique_id'",
    ),
    # a udev-matched port is never constructed (no udev monitor for a check): its fields still are
    "unknown field of a udev port": (
        HEAD + "  b1:\n    resources:\n      RigBoard: {variant: esp32}\n"
        "      USBSerialPort: {mtach: {ID_SERIAL_SHORT: X}}\n",
        "board b1: USBSerialPort", "unknown field 'mtach' (did you mean 'match'?)",
    ),
    "value of the wrong type": (
        HEAD + board().replace("variant: esp32", "variant: esp32, virtual: 3"),
        "board b1: RigBoard", "invalid value: 'virtual' must be <class 'bool'>",
    ),
    "wrong flash layout": (
        HEAD + board().replace("variant: esp32", "variant: esp32, flash_layout: stm32h743-2x1m"),
        "board b1: RigBoard.flash_layout", "not a esp32 layout",
    ),
    "no imports": (board().join(["targets:\n", ""]), "imports:", "add `imports: [rig.lab.resources]`"),
    "no targets": ("imports: [rig.lab.resources]\n", "targets:", "missing or empty"),
    "top level is a list": ("- a\n- b\n", "top level must be a mapping", "list"),
    "typo in top-level key": (
        "imports: [rig.lab.resources]\ntarget:\n" + board(), "top-level key 'target'", "did you mean 'targets'",
    ),
    "two boards on one console": (
        HEAD + board("b1", port=SHARED_PORT) + board("b2", port=SHARED_PORT, outlet=1),
        "board b2: console", "already used by board b1",
    ),
    "tags not strings": (
        HEAD + board().replace("variant: esp32", "variant: esp32, tags: [1, {a: b}]"),
        "board b1: RigBoard.tags", "list of strings",
    ),
    "resources not a mapping": (HEAD + "  b1:\n    resources: 42\n", "board b1: resources", "mapping"),
    "empty file": ("", "empty", "targets"),
}


@pytest.mark.parametrize("name", CASES)
def test_each_problem_is_one_line(tmp_path, name):
    text, where, what = CASES[name]
    f = tmp_path / "rack.yaml"
    f.write_text(text)
    with pytest.raises(RigErrors) as exc:
        load_rack(f)
    lines = exc.value.lines
    matching = [line for line in lines if where in line and what in line]
    assert matching, f"no line with {where!r} and {what!r} in {lines}"
    assert all(line.startswith(str(f)) for line in lines)
    assert all("\n" not in line for line in lines)


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    f = tmp_path / "rack.yaml"
    f.write_text(HEAD + board("b1", variant="esp33") + board("b2", variant="stm32h7", outlet=1))
    with pytest.raises(RigErrors) as exc:
        load_rack(f)
    assert len(exc.value.lines) == 2


def test_duplicate_ids_across_files_of_a_rack_folder(tmp_path):
    (tmp_path / "a.yaml").write_text(HEAD + board("b1"))
    (tmp_path / "b.yaml").write_text(HEAD + board("b1", outlet=1))
    with pytest.raises(RigErrors, match="board b1: duplicate board id"):
        load_rack(tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(RigErrors, match="no such targets file"):
        load_rack(tmp_path / "nope.yaml")


def test_cli_prints_one_line_per_problem_and_exits_nonzero(tmp_path):
    f = tmp_path / "rack.yaml"
    f.write_text(CASES["two boards on one outlet"][0])
    run = subprocess.run([sys.executable, "-m", "rig", "boards", "--rack", str(f)], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        f"rig: error: {f}: board b2: NetworkPowerPort: outlet already used by board b1; each board needs its own outlet"
    ]


def test_an_outlet_no_rig_driver_switches_is_refused_by_rig_boards(tmp_path):
    # A Modbus coil is a labgrid resource, but rig binds no power driver to it: listing the board
    # would promise a `rig power` that then says the board "has no power port".
    f = tmp_path / "rack.yaml"
    outlet = 'NetworkPowerPort: {model: simplerest, host: "http://127.0.0.1:9/{index}/{value}", index: 0}'
    f.write_text(HEAD + board().replace(outlet, "ModbusTCPCoil: {host: 192.0.2.7, coil: 1}"))
    run = subprocess.run([sys.executable, "-m", "rig", "boards", "--rack", str(f)], capture_output=True, text=True)
    assert run.returncode == 2, run.stdout
    assert run.stderr.splitlines() == [
        f"rig: error: {f}: board b1: ModbusTCPCoil: rig has no power driver for it; switch the board with one of "
        "NetworkPowerPort, PDUDaemonPort, YKUSHPowerPort, USBPowerPort"]


def test_every_power_port_the_inventory_accepts_has_the_driver_rig_binds():
    from labgrid.factory import target_factory

    from rig.lab.resources import OTHER_OUTLETS, POWER_PORTS

    for resource, driver in POWER_PORTS.items():
        bound = target_factory.drivers[driver].bindings["port" if "port" in target_factory.drivers[driver].bindings
                                                         else "hub"]
        names = {b if isinstance(b, str) else b.__name__ for b in (bound if isinstance(bound, set) else {bound})}
        assert resource in names, f"{driver} does not bind {resource}"
        assert resource in target_factory.resources
    assert not set(POWER_PORTS) & set(OTHER_OUTLETS)
    assert set(OTHER_OUTLETS) <= set(target_factory.resources)
