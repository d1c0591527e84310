"""Fixtures of the virtual ESP32 tests; the harness itself is esp32_harness.py."""

import pytest
from esp32_harness import PtyEsp32


@pytest.fixture
def esp32(tmp_path):
    board = PtyEsp32(tmp_path / "esp32-state")
    yield board
    board.close()
