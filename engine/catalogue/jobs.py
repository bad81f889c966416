"""Catalogue requests for the GUI: list entries with their states, import a user file."""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.catalogue import entries
from engine.catalogue.dynamic import user_models_dir
from engine.catalogue.entry import ModelEntry, Preprocess
from engine.catalogue.locate import EntryState, state_of
from engine.errors import ModelError
from engine.jobs import Progress

USER_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


#: Which panels can use a model of each family.
FAMILY_PANELS = {
    "classifier": ("classify", "attention"), "vit": ("classify", "attention"), "mae": ("mae", "attention"),
    "clip": ("search", "attention", "generate"), "text-encoder": ("search",), "ssl-backbone": ("train",),
    "unclip-prior": ("generate",), "unclip-decoder": ("generate",), "albef": ("match",),
    "vilt": ("match",),
}

#: Architectures a user can pick when a file's keys are not recognised: (family, builder, arch, options).
ARCH_CHOICES: dict[str, tuple[str, str, str, tuple]] = {
    "timm ViT-Ti/16": ("vit", "timm", "vit_tiny_patch16_224", ()),
    "timm ViT-S/16": ("vit", "timm", "vit_small_patch16_224", ()),
    "timm ViT-B/16": ("vit", "timm", "vit_base_patch16_224", ()),
    "timm DeiT-Ti/16": ("vit", "timm", "deit_tiny_patch16_224", ()),
    "timm DeiT-S/16": ("vit", "timm", "deit_small_patch16_224", ()),
    "torchvision ViT-B/16": ("vit", "torchvision_vit", "vit_b_16", ()),
    "open_clip ViT-B-32": ("clip", "open_clip", "ViT-B-32", ()),
    "open_clip ViT-B-16": ("clip", "open_clip", "ViT-B-16", ()),
    "MAE ViT-B/16": ("mae", "mae", "mae_vit_base_patch16", ()),
    "MAE ViT-L/16": ("mae", "mae", "mae_vit_large_patch16", ()),
}


def _num_classes(state: dict) -> int | None:
    for key in ("head.weight", "heads.head.weight", "classifier.weight", "fc.weight"):
        if key in state and getattr(state[key], "ndim", 0) == 2:
            return int(state[key].shape[0])
    return None


def _preprocess_for(builder: str, arch: str, options) -> Preprocess:
    """The input convention of the library the weights come from."""
    from engine.catalogue.builtin import CLIP, DEIT, HALF, IMAGENET
    from engine.models import efficientnet_lite

    if builder == "efficientnet_lite" or "efficientnet_lite" in arch:
        # TF-Lite weights expect (x - 127) / 128, not ImageNet statistics
        return Preprocess(224, 256, efficientnet_lite.MEAN, efficientnet_lite.STD, "bicubic")
    if builder == "open_clip":
        import dataclasses

        import open_clip

        size = (open_clip.get_model_config(arch) or {}).get("vision_cfg", {}).get("image_size", 224)
        size = size[0] if isinstance(size, (list, tuple)) else int(size)
        return dataclasses.replace(CLIP, input_size=size, resize=size)  # CLIP: resize the short side to the input size
    if builder == "timm":
        return DEIT if arch.startswith("deit") else HALF
    return IMAGENET


@dataclass(frozen=True)
class ModelRow:
    entry: ModelEntry
    state: EntryState
    loaded: bool = False


def list_models_job(ctx, panel: str | None = None) -> list[ModelRow]:
    """Every entry (optionally for one panel) with its state; path checks only, no network."""
    loaded = {key.split("@", 1)[0] for key, _ in ctx.models.loaded()}
    return [ModelRow(e, state_of(e), e.id in loaded) for e in entries(panel)]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "model"


def import_model_job(ctx, path: str, name: str | None = None, arch_choice: str | None = None):
    """Import a user's state dict: read it safely, infer (or take) its architecture,
    store it as safetensors in the data folder with a JSON card, and prove it builds."""
    from engine.models.infer import infer_architecture
    from engine.models.loading import load_state_dict

    src = Path(path)
    if src.suffix.lower() not in USER_SUFFIXES:
        raise ModelError(f"{src.name}: not a weights file; choose a {', '.join(USER_SUFFIXES)} state dict")
    yield Progress(0.1, "reading weights safely")
    state = load_state_dict(src)
    yield Progress(0.4, "recognising the architecture")
    if arch_choice:
        if arch_choice not in ARCH_CHOICES:
            raise ModelError(f"unknown architecture {arch_choice!r}; choose one of {', '.join(ARCH_CHOICES)}")
        family, builder, arch, options = ARCH_CHOICES[arch_choice]
        summary = f"{arch_choice} (chosen by the user)"
    else:
        guess = infer_architecture(state, filename=src.name)
        if guess is None:
            raise ModelError(f"could not recognise the architecture of {src.name} from its keys; "
                             "choose it in the import dialog")
        family, builder, arch, options, summary = guess.family, guess.builder, guess.arch, guess.options, guess.summary
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    model_id = "user-" + _slug(name or src.stem)
    base = model_id
    n = 1
    while (folder / f"{model_id}.json").exists():
        n += 1
        model_id = f"{base}-{n}"
    weights = folder / f"{model_id}.safetensors"
    yield Progress(0.6, "saving as safetensors")
    from safetensors.torch import save_file

    tmp = weights.with_name(weights.name + ".tmp")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    os.replace(tmp, weights)
    from engine.integrity import sha256_file

    num_classes = _num_classes(state)
    entry_card = {
        "id": model_id, "name": name or src.stem, "family": family, "panels": list(FAMILY_PANELS[family]),
        "description": f"Imported from {src}: {summary}", "licence": "user",
        "size_mb": round(weights.stat().st_size / 2**20, 1), "builder": builder, "arch": arch,
        "labels": "imagenet1k" if num_classes == 1000 else None, "options": dict(options),
        "preprocess": asdict(_preprocess_for(builder, arch, options)),
    }
    card = {"weights": weights.name, "sha256": sha256_file(str(weights)), "imported_from": str(src),
            "catalogue": entry_card}
    yield Progress(0.8, "checking that it builds")
    from engine.catalogue.dynamic import entry_from_card
    from engine.catalogue.entry import Source
    from engine.catalogue.load import build_model

    try:
        build_model(entry_from_card(card, Source("user", str(weights))), weights)
    except Exception as exc:
        weights.unlink(missing_ok=True)
        raise ModelError(f"{src.name} was recognised as {summary} but does not load: {exc}") from None
    card_path = folder / f"{model_id}.json"
    tmp_card = card_path.with_name(card_path.name + ".tmp")
    tmp_card.write_text(json.dumps(card, indent=2), encoding="utf-8")
    os.replace(tmp_card, card_path)
    return model_id


def remove_user_model(model_id: str) -> None:
    """Delete an imported model's card and weights."""
    folder = user_models_dir()
    card = folder / f"{model_id}.json"
    if not card.is_file():
        raise ModelError(f"{model_id} is not an imported model")
    data = json.loads(card.read_text(encoding="utf-8"))
    (folder / data.get("weights", "")).unlink(missing_ok=True)
    card.unlink()
    shutil.rmtree(folder / model_id, ignore_errors=True)


def delete_user_model_job(ctx, model_id: str) -> str:
    for key, _ in ctx.models.loaded():
        if key.startswith(model_id + "@"):
            ctx.models.unload(key)
    remove_user_model(model_id)
    return model_id
