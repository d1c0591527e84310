"""The shared firmware corpus the delta tests and benchmarks run on (../shared/corpus/README.md).

It lives beside the repository, at <repo>/../shared/corpus, and is data, not code: a missing
corpus is an environment problem, reported as one line.
"""

from pathlib import Path

from rig.errors import RigError

ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"

# name, old, new: every pair of the corpus README, smallest first.
PAIRS = (
    ("blinky", "blinky/old.bin", "blinky/new.bin"),
    ("synthesizer 1->2", "synthesizer/1.bin", "synthesizer/2.bin"),
    ("synthesizer 1->3", "synthesizer/1.bin", "synthesizer/3.bin"),
    ("pybv11 1f5d945af->dirty", "pybv11/1f5d945af/firmware1.bin", "pybv11/1f5d945af-dirty/firmware1.bin"),
    ("pybv11 v1.10->1f5d945af", "pybv11/v1.10/firmware1.bin", "pybv11/1f5d945af/firmware1.bin"),
    ("esp8266 v1.9.4->v1.10", "micropython/esp8266-20180511-v1.9.4.bin", "micropython/esp8266-20190125-v1.10.bin"),
)


def load(name: str) -> tuple[bytes, bytes]:
    """The (old, new) images of a named pair."""
    if not ROOT.is_dir():
        raise RigError(f"firmware corpus not found at {ROOT}; it must sit at <repo>/../shared/corpus")
    _, old, new = next(p for p in PAIRS if p[0] == name)
    try:
        return (ROOT / old).read_bytes(), (ROOT / new).read_bytes()
    except OSError as exc:
        raise RigError(f"firmware corpus incomplete: {exc.filename}: {exc.strerror}") from None
