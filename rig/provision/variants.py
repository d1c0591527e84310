"""Which recipe provisions a variant, and which recipe options it reads.

The variant modules are imported only when a station needs them (the STM32 recipe pulls in pyocd).
Each exports OPTIONS (option name -> default) and RECIPES (variant -> Recipe).
"""

import importlib

from rig.errors import RigError
from rig.provision.recipe import Recipe

MODULES = {"esp32": "rig.provision.esp32", "stm32h7": "rig.provision.stm32", "stm32l0": "rig.provision.stm32"}


def _module(variant: str):
    if variant not in MODULES:
        raise RigError(f"no provisioning recipe for variant {variant!r}; recipes exist for {', '.join(MODULES)}")
    return importlib.import_module(MODULES[variant])


def recipe(variant: str) -> Recipe:
    module = _module(variant)
    return module.RECIPES[variant]


def options(variant: str) -> dict:
    """The variant's recipe options and their defaults."""
    return dict(_module(variant).OPTIONS)
