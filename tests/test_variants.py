"""rig.variants is the one place a variant's shared facts live: nothing else branches on a name.

The count reads the source (as a reviewer's grep would, but through the syntax tree so that prose
in docstrings and comments does not count): outside rig/variants.py and the variant-specific
modules its records name (`recipe`, `modules`), no comparison with a variant name, no table keyed
by one, no list of them. Layer-private tables keyed by variant are named below, each with the
reason it is not a shared fact, and must cover every variant.
"""

import ast
import importlib
import re
from pathlib import Path

import pytest

from rig import variants
from rig.image.layouts import LAYOUTS
from rig.variants import NAMES, VARIANTS, Bootloader, Delivery, Family, Flasher, facts, foreign

RIG = Path(variants.__file__).parent

def _every(v):
    return True


def _mcuboot(v):
    return v.bootloader is Bootloader.MCUBOOT


def _stm32(v):
    return v.family is Family.STM32


# (module, table) -> which variants it must cover: facts one layer needs for itself.
PRIVATE_TABLES = {
    # the flash operation from which the virtual MCUboot's swap is resumable (which sim fault
    # switch a swap-cut scenario must be caught by)
    ("rig/ota/scenarios.py", "_SWAP_RECORDED_FROM"): _mcuboot,
    # datasheet erase/program times of each part's flash, for the virtual lab's timing model
    ("rig/sim/timing.py", "PARTS"): _every,
    # the provisioning station's serial number prefix per product
    ("rig/provision/steps.py", "SERIAL_PREFIX"): _every,
    # the simulated fleet's default share of each variant (rig fleet up --mix)
    ("rig/fleet/control.py", "DEFAULT_MIX"): _every,
    # the silicon each STM32 variant carries (its reference manual's core and addresses)
    ("rig/chips/stm32.py", "PARTS"): _stm32,
}


def _module_paths(module: str) -> list[Path]:
    path = RIG.parent / module.replace(".", "/")
    return sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]


def _allowed() -> set[str]:
    allowed = {"rig/variants.py"}
    for v in VARIANTS.values():
        for module in (v.recipe, *v.modules):
            allowed |= {p.relative_to(RIG.parent).as_posix() for p in _module_paths(module)}
    return allowed


def _is_name(node) -> bool:
    return isinstance(node, ast.Constant) and node.value in NAMES


def _names_in(node) -> bool:
    return _is_name(node) or (isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(map(_is_name, node.elts)))


def _findings(path: Path, rel: str) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    private = {name for module, name in PRIVATE_TABLES if module == rel}
    exempt: set[int] = set()  # ids of nodes inside a private table's definition or lookup
    for node in ast.walk(tree):
        targets = (node.targets if isinstance(node, ast.Assign) else [node.target]
                   if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id in private for t in targets):
            exempt |= {id(n) for n in ast.walk(node)}
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in private:
            exempt |= {id(n) for n in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in exempt:
            continue
        what = None
        if isinstance(node, ast.Compare) and any(map(_names_in, [node.left, *node.comparators])):
            what = "compares with a variant name"
        elif isinstance(node, ast.Dict) and any(k is not None and _is_name(k) for k in node.keys):
            what = "a table keyed by variant names"
        elif isinstance(node, ast.Subscript) and _is_name(node.slice):
            what = "looks a variant name up in a table"
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(map(_is_name, node.elts)):
            what = "lists variant names"
        if what:
            found.append(f"{rel}:{node.lineno}: {what}")
    return sorted(set(found))


def test_no_module_outside_the_variant_modules_branches_on_a_variant_name():
    allowed = _allowed()
    findings = []
    for path in sorted(RIG.rglob("*.py")):
        rel = path.relative_to(RIG.parent).as_posix()
        if rel not in allowed:
            findings += _findings(path, rel)
    assert findings == [], "ask rig.variants for the fact instead:\n" + "\n".join(findings)


def test_the_issues_grep_counts_no_variant_compared_with_a_name():
    # grep -rn 'variant == "' rig/ | grep -v rig/variants.py, and the same for != and the name first
    # (a variant compared with another variable - a selection, an SQL filter - is not a fact)
    allowed = _allowed()
    pattern = re.compile(r"""variant\s*[!=]=\s*["']|["']\s*[!=]=\s*[\w.]*variant\b""")
    hits = [f"{path.relative_to(RIG.parent)}:{n}" for path in sorted(RIG.rglob("*.py"))
            if path.relative_to(RIG.parent).as_posix() not in allowed
            for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_the_count_catches_what_it_is_for(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('if board.variant == "esp32":\n    pass\nX = {"stm32h7": 1}\nY = Z["stm32l0"]\n'
                     'W = ("esp32", "stm32h7")\nok = "esp32-devkit" == name\n')
    assert [f.split(": ", 1)[1] for f in _findings(probe, "probe.py")] == [
        "compares with a variant name", "a table keyed by variant names", "looks a variant name up in a table",
        "lists variant names"]


@pytest.mark.parametrize(("module", "table"), sorted(PRIVATE_TABLES))
def test_a_private_table_covers_every_variant(module, table):
    keys = set(getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), table))
    wanted = {v.name for v in VARIANTS.values() if PRIVATE_TABLES[module, table](v)}
    assert keys == wanted, f"{module} {table}: add the new variant's entry"


def test_every_module_a_record_names_exists():
    for v in VARIANTS.values():
        for module in (v.recipe, *v.modules):
            assert all(p.exists() for p in _module_paths(module)), f"{v.name}: no module {module}"
        assert importlib.import_module(v.recipe).RECIPES[v.name].variant == v.name


@pytest.mark.parametrize("name", NAMES)
def test_records_are_consistent(name):
    v = facts(name)
    assert v.name == name
    assert LAYOUTS[v.default_layout].variant == name
    assert v.layouts()[0] == v.default_layout
    assert v.layout.part(v.app_partition)
    assert v.debug_probe == (v.flasher is Flasher.SWD)
    # what rig can deliver today: an SMP push ends in MCUboot's swap; an HTTP pull in ESP-IDF's otadata
    assert (v.delivery is Delivery.SMP_PUSH) == (v.bootloader is Bootloader.MCUBOOT)
    assert variants.by_appdesc_code(v.appdesc_code) is v
    assert foreign(name) != name


def test_unknown_names_get_one_line_with_the_closest():
    from rig.errors import RigError

    with pytest.raises(RigError, match=r"unknown variant 'stm32h8' \(did you mean 'stm32h7'\?\); one of esp32, "):
        facts("stm32h8")


def test_a_wrong_variant_release_is_one_the_transport_takes():
    # the STM32s get each other's MCUboot image; the ESP32 gets the smallest other part's
    assert foreign("stm32h7") == "stm32l0" and foreign("stm32l0") == "stm32h7"
    assert foreign("esp32") == "stm32l0"
