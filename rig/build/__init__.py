"""rig.build: the reference firmware and ESP32 images, built reproducibly with a manifest.

    from rig.build import build
    result = build(Path("build/firmware"), variants=("stm32h7",), version="1.2.0")
"""

from rig.build.pipeline import DEFAULT_OUT, DEFAULT_VERSION, STM32_NAMES, Result, build, count

__all__ = ["DEFAULT_OUT", "DEFAULT_VERSION", "STM32_NAMES", "Result", "build", "count"]
