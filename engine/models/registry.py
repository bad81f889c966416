"""Model builders by registered name: the only code a model card can make the app run.

A card (built in, imported, or a run's card.json) names its builder, e.g. "vit". The name
is looked up here, never imported: `HOMES` says which of the app's own modules registers
each name with @register_builder, and a name missing from it is refused before anything is
imported. Cards saved before names existed hold "module:function" strings; `LEGACY` maps
each one the app ever wrote to its name, so those runs keep loading.
"""
from __future__ import annotations

import importlib
from typing import Callable

from engine.errors import ModelError

Builder = Callable  # fn(entry, path) -> eval-mode torch module

#: Registered name -> the module whose import registers it (a fixed table, not data).
HOMES: dict[str, str] = {
    "timm": "engine.models.builders",
    "torchvision_vit": "engine.models.builders",
    "open_clip": "engine.models.builders",
    "mae": "engine.models.builders",
    "minilm": "engine.models.builders",
    "kandinsky": "engine.models.builders",
    "efficientnet_lite": "engine.models.builders",
    "conse": "engine.search.conse",
    "labelspace": "engine.search.labelspace",
    "vit": "engine.models.vit",
    "ssl_backbone": "engine.models.backbones",
    "lit": "engine.models.lit",
    "albef": "engine.models.albef",
    "vilt": "engine.models.vilt",
    "unclip_prior": "engine.generate.unclip",
    "unclip_decoder": "engine.generate.unclip",
    "probe": "engine.train.features",
}

_B = "engine.models.builders:"
#: Every "module:function" builder string the app wrote into cards before names -> its name.
LEGACY: dict[str, str] = {
    _B + "build_timm": "timm",
    _B + "build_torchvision_vit": "torchvision_vit",
    _B + "build_open_clip": "open_clip",
    _B + "build_mae": "mae",
    _B + "build_minilm": "minilm",
    _B + "build_kandinsky": "kandinsky",
    "engine.models.efficientnet_lite:build": "efficientnet_lite",
    "engine.search.conse:build_conse": "conse",
    "engine.search.labelspace:build_labelspace": "labelspace",
    "engine.train.vit:build_from_run": "vit",
    "engine.train.vit:build_from_resources": "vit",
    "engine.train.backbones:build_from_run": "ssl_backbone",
    "engine.train.backbones:build_from_resources": "ssl_backbone",
    "engine.models.lit:build_from_run": "lit",
    "engine.models.lit:build_from_resources": "lit",
    "engine.models.albef:build_from_run": "albef",
    "engine.models.albef:build_from_resources": "albef",
    "engine.models.vilt:build_from_run": "vilt",
    "engine.models.vilt:build_from_resources": "vilt",
    "engine.generate.unclip:build_prior_from_run": "unclip_prior",
    "engine.generate.unclip:build_prior_from_resources": "unclip_prior",
    "engine.generate.unclip:build_decoder_from_run": "unclip_decoder",
    "engine.generate.unclip:build_decoder_from_resources": "unclip_decoder",
    "engine.train.features:build_probe_from_run": "probe",
}

_registered: dict[str, Builder] = {}


def register_builder(name: str) -> Callable[[Builder], Builder]:
    """Decorator: make `fn` the builder a card can name as `name` (which HOMES must list)."""
    if name not in HOMES:
        raise ValueError(f"builder name {name!r} is missing from engine.models.registry.HOMES")

    def register(fn: Builder) -> Builder:
        _registered[name] = fn
        return fn

    return register


def builder_name(value: str) -> str:
    """The registered name for a card's builder field: a name as is, an old string through
    LEGACY; anything else is returned unchanged, to be refused by `resolve` when used."""
    return LEGACY.get(value, value)


def resolve(value: str) -> Builder:
    """The builder function a card names, or ModelError; imports only the app's own module."""
    name = builder_name(value)
    if name not in HOMES:
        raise ModelError(f"its card names the builder {value!r}, which is not one Patchwork registered "
                         f"(known: {', '.join(sorted(HOMES))}); refusing to load it")
    if name not in _registered:
        importlib.import_module(HOMES[name])
    return _registered[name]


def names() -> list[str]:
    return sorted(HOMES)
