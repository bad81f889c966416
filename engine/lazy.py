"""The one resolver of "module:attribute" strings, as the app's fixed tables name their entries
(engine.core.REQUESTS, engine.train.recipes.RECIPES, the panels, package-shipped weights):
the module is imported on first use, so naming a thing costs nothing until it is needed, and
a table can name code in a layer above its own. Never applied to strings read from files:
cards name builders through engine.models.registry."""
from __future__ import annotations

import importlib


def attribute(target: str):
    """What `target` ("package.module:name") names, importing the module if needed."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
