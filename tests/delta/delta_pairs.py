"""Patches of the corpus pairs, made once per session (making them is most of the cost).

A uniquely named module, not conftest: several test folders have a conftest."""

import pytest

from rig import delta
from rig.delta import corpus
from rig.errors import RigError

# Big pairs run nightly; the default run keeps the small ones and one real MicroPython pair.
NIGHTLY = {"pybv11 v1.10->1f5d945af", "esp8266 v1.9.4->v1.10"}
PAIR_PARAMS = [pytest.param(name, marks=[pytest.mark.nightly] if name in NIGHTLY else [])
               for name, _, _ in corpus.PAIRS]

_made = {}


def pair(name):
    try:
        return corpus.load(name)
    except RigError as exc:
        pytest.fail(str(exc))


def made(name, profile):
    """(old, new, Delta) for a corpus pair, cached for the session."""
    if (name, profile) not in _made:
        old, new = pair(name)
        _made[name, profile] = (old, new, delta.make(old, new, profile))
    return _made[name, profile]

