"""Which recipe provisions a variant, and which recipe options it reads.

The module of a variant's recipe is its rig.variants record's `recipe`; it is imported only when a
station needs it (the STM32 recipe pulls in pyocd). Each exports OPTIONS (option name -> default)
and RECIPES (variant -> Recipe).
"""

import importlib

from rig.provision.recipe import Recipe
from rig.variants import facts


def _module(variant: str):
    return importlib.import_module(facts(variant).recipe)


def recipe(variant: str) -> Recipe:
    module = _module(variant)
    return module.RECIPES[variant]


def options(variant: str) -> dict:
    """The variant's recipe options and their defaults."""
    return dict(_module(variant).OPTIONS)
