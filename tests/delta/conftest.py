"""Fixtures of tests/delta: the blinky pair's patches, made once."""

import pytest
from delta_pairs import made


@pytest.fixture(scope="session")
def blinky_p2():
    return made("blinky", "p2")


@pytest.fixture(scope="session")
def blinky_p1():
    return made("blinky", "p1")
