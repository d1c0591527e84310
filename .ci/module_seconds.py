"""Write tests/module_seconds.txt from the JUnit file of a measured default run: the seconds each
test module took (setup, call and teardown of its tests, summed), longest first. The root
conftest.py starts the longest modules first with it.

    pytest -n 4 --junitxml=run.xml && python .ci/module_seconds.py run.xml "how it was measured"
"""

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "module_seconds.txt"
SHORTEST = 2.0  # seconds; a shorter module's place in the order changes nothing worth a line


def module_of(classname: str) -> str | None:
    """tests/x/test_y.py for classname tests.x.test_y or tests.x.test_y.TestClass."""
    parts = classname.split(".")
    for end in range(len(parts), 0, -1):
        path = "/".join(parts[:end]) + ".py"
        if (ROOT / path).is_file():
            return path
    return None


def main(junit: str, measured: str) -> int:
    seconds: dict[str, float] = defaultdict(float)
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = module_of(case.get("classname", ""))
        if module is not None:
            seconds[module] += float(case.get("time") or 0)
    lines = [f"{value:.1f} {module}" for module, value in sorted(seconds.items(), key=lambda kv: -kv[1])
             if value >= SHORTEST]
    header = [f"# Seconds per test module, summed over its tests: {measured}.",
              "# Read by conftest.py (longest modules first); written by .ci/module_seconds.py."]
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text("\n".join(header + lines) + "\n")
    tmp.replace(OUT)
    print(f"{OUT.relative_to(ROOT)}: {len(lines)} modules of {len(seconds)}, {sum(seconds.values()):.0f} s in all")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: python .ci/module_seconds.py JUNIT.xml 'how it was measured'", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
