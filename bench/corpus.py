"""The firmware corpus bench_delta measures on: real pairs kept beside the repository as data.

It is looked up at $RIG_CORPUS, else at <repo>/../shared/corpus (where this project's shared
reference material lives). The tests never use it: they run on tests/delta/pairs/ and on images
built from firmware/. Without a corpus the delta benchmark says so and measures nothing.
"""

import os
from pathlib import Path

ROOT = Path(os.environ.get("RIG_CORPUS") or Path(__file__).resolve().parents[1].parent / "shared" / "corpus")

# name, old, new: every pair of the corpus README, smallest first.
PAIRS = (
    ("blinky", "blinky/old.bin", "blinky/new.bin"),
    ("synthesizer 1->2", "synthesizer/1.bin", "synthesizer/2.bin"),
    ("synthesizer 1->3", "synthesizer/1.bin", "synthesizer/3.bin"),
    ("pybv11 1f5d945af->dirty", "pybv11/1f5d945af/firmware1.bin", "pybv11/1f5d945af-dirty/firmware1.bin"),
    ("pybv11 v1.10->1f5d945af", "pybv11/v1.10/firmware1.bin", "pybv11/1f5d945af/firmware1.bin"),
    ("esp8266 v1.9.4->v1.10", "micropython/esp8266-20180511-v1.9.4.bin", "micropython/esp8266-20190125-v1.10.bin"),
)


def missing() -> str | None:
    """Why the corpus cannot be used, as one line; None when every pair's files are there."""
    if not ROOT.is_dir():
        return f"no firmware corpus at {ROOT} (set RIG_CORPUS to a copy of it)"
    absent = sorted({f for _, old, new in PAIRS for f in (old, new) if not (ROOT / f).is_file()})
    if absent:
        return f"firmware corpus at {ROOT} lacks {', '.join(absent)}"
    return None


def load(name: str) -> tuple[bytes, bytes]:
    """The (old, new) images of a named pair."""
    _, old, new = next(p for p in PAIRS if p[0] == name)
    return (ROOT / old).read_bytes(), (ROOT / new).read_bytes()
