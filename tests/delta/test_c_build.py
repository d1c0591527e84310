"""The applier's C stays warning-free for the host and for both device cores and profiles."""

import shutil
import subprocess

import pytest

from rig.delta.native import SOURCE_DIR

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wconversion", "-Werror", "-fsyntax-only"]
CROSS = [("-DRDELTA_WITH_LZSS", "cortex-m0plus"), ("-DRDELTA_WITH_LZMA", "cortex-m7")]


def _compile(cc, *flags):
    sources = [str(p) for p in sorted(SOURCE_DIR.glob("*.c"))]
    done = subprocess.run([cc, *STRICT, *flags, *sources], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_host_build_with_both_codecs_is_warning_free():
    _compile("gcc", "-DRDELTA_WITH_LZSS", "-DRDELTA_WITH_LZMA")


@pytest.mark.parametrize("define, cpu", CROSS)
def test_device_build_is_warning_free(define, cpu):
    if not shutil.which("arm-none-eabi-gcc"):
        pytest.fail("arm-none-eabi-gcc missing: run .ci/setup")
    _compile("arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", "-Os", define)
