"""The firmware pairs tests/delta runs on, and their patches, made once per session (making them
is most of the cost).

Two sources, both inside the repository:
- shipped: real third-party images in tests/delta/pairs/ (provenance and licences in its README),
  checked against the SHA-256s recorded there;
- built: firmware/ compiled by rig.build, the same release with -Os and with -O2 - a
  compiler-flag change, the case where most of the code moves.

A uniquely named module, not conftest: several test folders have a conftest."""

import functools
import hashlib
import tempfile
from pathlib import Path

from rig import delta
from rig.build import build

PAIRS_DIR = Path(__file__).parent / "pairs"

# name -> (old file, new file, their SHA-256s as tests/delta/pairs/README.md records them)
SHIPPED = {
    "blinky": ("blinky/old.bin", "blinky/new.bin",
               "6942bd459a8f814441c54de76c5fb0ac0438b7fa724e7b0ed7b1f73141f40dc8",
               "97a87fa15c008c10da72aaccf9a260feeadcf33b39d3b43853f0b8313e614d9e"),
}
# name -> (variant, old flags, new flags)
BUILT = {
    "stm32l0 -Os->-O2": ("stm32l0", (), ("-O2",)),
    "stm32h7 -Os->-O2": ("stm32h7", (), ("-O2",)),
}
PAIR_NAMES = [*SHIPPED, *BUILT]

_made = {}


def _shipped(name: str) -> tuple[bytes, bytes]:
    old_file, new_file, *digests = SHIPPED[name]
    images = tuple((PAIRS_DIR / f).read_bytes() for f in (old_file, new_file))
    for f, data, digest in zip((old_file, new_file), images, digests, strict=True):
        assert hashlib.sha256(data).hexdigest() == digest, f"tests/delta/pairs/{f} is not the recorded file"
    return images


@functools.cache
def _firmware(variant: str, cflags: tuple[str, ...]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="rig-delta-pair-") as tmp:
        result = build(Path(tmp), variants=(variant,), version="1.0.0", faults=("none",), cflags=cflags)
        (app,) = (a for a in result.artifacts if a["kind"] == "app")
        return (Path(tmp) / app["file"]).read_bytes()


def pair(name: str) -> tuple[bytes, bytes]:
    """The (old, new) images of a named pair."""
    if name in SHIPPED:
        return _shipped(name)
    variant, old_flags, new_flags = BUILT[name]
    return _firmware(variant, old_flags), _firmware(variant, new_flags)


def made(name: str, profile: str):
    """(old, new, Delta) for a pair, cached for the session."""
    if (name, profile) not in _made:
        old, new = pair(name)
        _made[name, profile] = (old, new, delta.make(old, new, profile))
    return _made[name, profile]

