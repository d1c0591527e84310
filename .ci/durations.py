"""Write tests/durations.txt from the JUnit files of a measured run of tox's two test commands: the
seconds each test module of the default run took (its tests' setup, call and teardown, summed), and
the seconds each HIL test took. conftest.py starts the longest first with them.

    pytest -n 4 --junitxml=default.xml
    pytest tests/hil --rig-rack targets/virtual-rack.yaml -n 4 --junitxml=hil.xml
    python .ci/durations.py default.xml hil.xml "how it was measured"

Per test for the HIL run, and only the tests on no board of the rack (the side labs'): its scheduler
(tests/hil/conftest.py) hands out each board's tests as a whole, in their collected order, and every
other test on its own, so it is those whose order counts.
"""

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "durations.txt"
SHORTEST = 2.0  # seconds; a shorter module's or test's place in the order changes nothing worth a line


def module_of(classname: str) -> str | None:
    """tests/x/test_y.py for classname tests.x.test_y or tests.x.test_y.TestClass."""
    parts = classname.split(".")
    for end in range(len(parts), 0, -1):
        path = "/".join(parts[:end]) + ".py"
        if (ROOT / path).is_file():
            return path
    return None


def rack_boards() -> list[str]:
    """The board ids of the virtual rack (its tests' ids start with them)."""
    import yaml

    return list(yaml.safe_load((ROOT / "targets" / "virtual-rack.yaml").read_text())["targets"])


def cases(junit: str):
    """(module, test name, seconds) of each testcase."""
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = module_of(case.get("classname", ""))
        if module is not None:
            yield module, case.get("name"), float(case.get("time") or 0)


def main(default_junit: str, hil_junit: str, measured: str) -> int:
    seconds: dict[str, float] = defaultdict(float)
    for module, _, took in cases(default_junit):
        seconds[module] += took
    boards = rack_boards()
    for module, name, took in cases(hil_junit):
        params = name.rpartition("[")[2].rstrip("]")
        if not any(params == b or params.startswith(f"{b}-") for b in boards):  # a board's tests keep their order
            seconds[f"{module}::{name}"] += took
    lines = [f"{value:.1f} {key}" for key, value in sorted(seconds.items(), key=lambda kv: -kv[1])
             if value >= SHORTEST]
    header = [f"# Seconds per test module of the default run, per test of the HIL run: {measured}.",
              "# Read by conftest.py (longest first); written by .ci/durations.py."]
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text("\n".join(header + lines) + "\n")
    tmp.replace(OUT)
    print(f"{OUT.relative_to(ROOT)}: {len(lines)} lines, {sum(seconds.values()):.0f} s in all")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print("usage: python .ci/durations.py DEFAULT.xml HIL.xml 'how it was measured'", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
