"""`python -m bench [NAME...]`: run every bench/bench_*.py module's main(), or only the named ones
(`python -m bench catch-rate` runs bench_catch_rate; it is not part of CI).

Each main() measures and prints its own figures (rich tables on stdout); a module that cannot
measure (a tool missing) says so in its output rather than failing the others.
"""

import importlib
import pkgutil
import sys
from pathlib import Path

# Run only when named: the catch rate starts a lab per defect and takes tens of minutes; the
# debug port bench loads the host with busy processes on purpose.
ON_REQUEST = {"bench_catch_rate", "bench_debug_port"}


def main(argv: list[str]) -> int:
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
    # `catch-rate` names bench_catch_rate: module names cannot have hyphens, command words may.
    wanted = [n.replace("-", "_") if n.startswith("bench_") else f"bench_{n.replace('-', '_')}" for n in argv]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"bench: error: no module {', '.join(unknown)}; have {', '.join(names)}", file=sys.stderr)
        return 2
    for name in wanted or [n for n in names if n not in ON_REQUEST]:
        print(f"== {name}")
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
