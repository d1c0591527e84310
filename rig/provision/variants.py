"""Which recipe provisions a variant, and which recipe options it reads.

The module of a variant's recipe is its rig.variants record's `recipe`; it is imported only when a
station needs it (the STM32 recipe pulls in pyocd). Each exports OPTIONS (option name -> default)
and RECIPES (variant -> Recipe).
"""

import importlib

from rig.errors import RigError
from rig.provision.recipe import Recipe
from rig.variants import NAMES, VARIANTS


def _module(variant: str):
    if variant not in VARIANTS:
        raise RigError(f"no provisioning recipe for variant {variant!r}; recipes exist for {', '.join(NAMES)}")
    return importlib.import_module(VARIANTS[variant].recipe)


def recipe(variant: str) -> Recipe:
    module = _module(variant)
    return module.RECIPES[variant]


def options(variant: str) -> dict:
    """The variant's recipe options and their defaults."""
    return dict(_module(variant).OPTIONS)
