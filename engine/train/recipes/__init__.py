"""Training recipes: each says what to build and what one step computes; engine.train.loop
does the rest. Registered by name for the CLI (`python main.py train NAME`) and the GUI."""
from __future__ import annotations

from engine import lazy
from engine.errors import TrainingError

RECIPES: dict[str, str] = {
    "supervised": "engine.train.recipes.supervised:SupervisedRecipe",
    "moco_v2": "engine.train.recipes.moco_v2:MoCoV2Recipe",
    "moco_v3": "engine.train.recipes.moco_v3:MoCoV3Recipe",
    "simclr": "engine.train.recipes.simclr:SimCLRRecipe",
    "instdisc": "engine.train.recipes.instdisc:InstDiscRecipe",
    "linear_probe": "engine.train.recipes.probe:LinearProbeRecipe",
    "finetune": "engine.train.recipes.probe:FinetuneRecipe",
    "clip": "engine.train.recipes.clip:CLIPRecipe",
    "lit": "engine.train.recipes.clip:LiTRecipe",
    "albef": "engine.train.recipes.albef:ALBEFRecipe",
    "vilt": "engine.train.recipes.vilt:ViLTRecipe",
    "unclip_prior": "engine.train.recipes.unclip:PriorRecipe",
    "unclip_decoder": "engine.train.recipes.unclip:DecoderRecipe",
    "mae": "engine.train.recipes.mae:MAERecipe",
    "pseudo_label": "engine.train.recipes.pseudo_label:PseudoLabelRecipe",
}


def recipe_class(name: str):
    try:
        target = RECIPES[name]
    except KeyError:
        raise TrainingError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}") from None
    return lazy.attribute(target)
