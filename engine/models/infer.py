"""Guess the architecture of a user-imported weights file from its key names and shapes.

Like openai/CLIP's ``build_model``, which reads the vision width from ``visual.conv1``'s
shape and the depth by counting ``resblocks``: each family below reads its sizes off the
state dict, names the matching architecture, then *confirms* the guess by building that
architecture on the ``meta`` device (no memory, no initialisation) and checking that every
key and every shape matches. Anything that does not match exactly gets None, never a
near miss: a wrong guess would load with random layers or fail later.

Families: timm ViT / DeiT, torchvision ViT, open_clip / OpenAI CLIP, MAE (with decoder),
EfficientNet-Lite (EfficientNet-PyTorch and timm key names).
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

from engine.models.builders import OPENAI_CLIP_EXTRAS, describe_mismatch

log = logging.getLogger(__name__)


#: ViT width -> (size name, short letter, heads, usual depth).
VIT_SIZES = {
    192: ("tiny", "Ti", 3, 12),
    384: ("small", "S", 6, 12),
    768: ("base", "B", 12, 12),
    1024: ("large", "L", 16, 24),
    1280: ("huge", "H", 16, 32),
}
#: torchvision ViT names by (width, depth, patch).
TORCHVISION_VITS = {
    (768, 12, 16): "vit_b_16", (768, 12, 32): "vit_b_32", (1024, 24, 16): "vit_l_16",
    (1024, 24, 32): "vit_l_32", (1280, 32, 14): "vit_h_14",
}
#: open_clip architectures tried, smallest first.
OPEN_CLIP_ARCHS = ("ViT-B-32", "ViT-B-32-256", "ViT-B-16", "ViT-L-14", "ViT-L-14-336", "ViT-H-14", "ViT-g-14",
                   "ViT-bigG-14")
#: MAE factories by (encoder width, patch size).
MAE_ARCHS = {(768, 16): "mae_vit_base_patch16", (1024, 16): "mae_vit_large_patch16",
             (1280, 14): "mae_vit_huge_patch14", (128, 4): "mae_vit_tiny"}


@dataclass(frozen=True)
class ArchGuess:
    """What an imported file is, in the catalogue's terms (see `ModelEntry`)."""

    family: str  # "vit", "clip", "mae", "classifier"
    builder: str  # a registered builder name (engine.models.registry), e.g. "timm"
    arch: str  # the builder's architecture name
    options: tuple[tuple[str, str], ...] = ()
    num_classes: int | None = None  # classifier outputs; 0 for a features-only model, None if not a classifier
    summary: str = ""  # e.g. "timm ViT-S/16, 224 px, 1000 classes, 22.1 M parameters"
    num_params: int = 0


def infer_architecture(state_dict, filename: str | None = None) -> ArchGuess | None:
    """The architecture `state_dict` (name -> tensor) was saved from, or None if unsure.

    `filename`, when given, only breaks ties the weights cannot (e.g. ``tf_`` padding).
    """
    import torch

    shapes = {k: tuple(v.shape) for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    if not shapes:
        return None
    for guess in (_mae, _open_clip, _torchvision_vit, _timm_vit, _efficientnet_pytorch, _timm_efficientnet_lite):
        try:
            found = guess(shapes, (filename or "").lower())
        except Exception:  # noqa: BLE001 - a guesser tripping over odd shapes means "not this family"
            log.debug("architecture guess %s failed", guess.__name__, exc_info=True)
            found = None
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------------------- helpers
def _count(shapes: dict, pattern: str) -> int:
    """How many distinct indices N appear in keys matching `pattern` (a regex with one (\\d+) group)."""
    rx = re.compile(pattern)
    return len({m.group(1) for k in shapes if (m := rx.match(k))})


def _meta_build(factory):
    import torch

    with torch.device("meta"):
        return factory()


def _confirm(model, shapes: dict) -> int | None:
    """The model's parameter count if its state dict has exactly `shapes`, else None."""
    expected = model.state_dict()
    if describe_mismatch(expected, {k: _Shape(s) for k, s in shapes.items()}) is not None:
        return None
    return sum(p.numel() for p in model.parameters())


class _Shape:
    """Stands in for a tensor where only `.shape` is read."""

    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = shape


def _grid(tokens: int) -> int | None:
    g = math.isqrt(tokens)
    return g if g * g == tokens else None


def _params(n: int) -> str:
    return f"{n / 1e6:.1f} M parameters"


def _classes(n: int) -> str:
    return f"{n} classes" if n else "no classifier head (features only)"


# ---------------------------------------------------------------------------- MAE
def _mae(shapes: dict, filename: str) -> ArchGuess | None:
    if "decoder_embed.weight" not in shapes or "patch_embed.proj.weight" not in shapes:
        return None
    from engine.models import mae

    d, c, p, _ = shapes["patch_embed.proj.weight"]
    arch = MAE_ARCHS.get((d, p))
    if arch is None:
        return None
    grid = _grid(shapes["pos_embed"][1] - 1)
    if grid is None:
        return None
    base = mae.CONFIGS[arch]
    found = {
        "img_size": grid * p, "in_chans": c, "depth": _count(shapes, r"blocks\.(\d+)\."),
        "decoder_embed_dim": shapes["decoder_embed.weight"][0],
        "decoder_depth": _count(shapes, r"decoder_blocks\.(\d+)\."),
    }
    overrides = {k: v for k, v in found.items() if getattr(base, k) != v}
    # Official "_full" pretrain checkpoints were trained on normalised pixels; nothing in the weights says so.
    norm_pix = "_full" in filename and "visualize" not in filename
    model = _meta_build(lambda: mae.FACTORIES[arch](**overrides))
    n = _confirm(model, shapes)
    if n is None:
        return None
    options = tuple((k, str(v)) for k, v in overrides.items()) + (("norm_pix_loss", "1" if norm_pix else "0"),)
    letter = VIT_SIZES.get(d, ("", "?"))[1] if arch != "mae_vit_tiny" else "tiny"
    return ArchGuess(
        family="mae", builder="mae", arch=arch, options=options, num_classes=None,
        summary=(f"MAE ViT-{letter}/{p} (decoder {found['decoder_embed_dim']}-d × {found['decoder_depth']}), "
                 f"{grid * p} px, {_params(n)}"), num_params=n)


# ---------------------------------------------------------------------------- open_clip / OpenAI CLIP
def _open_clip(shapes: dict, filename: str) -> ArchGuess | None:
    if not {"visual.conv1.weight", "text_projection", "token_embedding.weight"} <= shapes.keys():
        return None
    import open_clip

    shapes = {k: s for k, s in shapes.items() if k not in OPENAI_CLIP_EXTRAS}
    width, _, patch, _ = shapes["visual.conv1.weight"]
    layers = _count(shapes, r"visual\.transformer\.resblocks\.(\d+)\.")
    text_layers = _count(shapes, r"transformer\.resblocks\.(\d+)\.")
    text_width, embed_dim = shapes["text_projection"]
    grid = _grid(shapes["visual.positional_embedding"][0] - 1)
    if grid is None:
        return None
    for arch in OPEN_CLIP_ARCHS:
        cfg = open_clip.get_model_config(arch)
        if cfg is None:
            continue
        v, t = cfg["vision_cfg"], cfg["text_cfg"]
        if (v.get("width"), v.get("patch_size"), v.get("layers"), v.get("image_size")) != (
                width, patch, layers, grid * patch):
            continue
        if (t.get("width"), t.get("layers"), cfg.get("embed_dim")) != (text_width, text_layers, embed_dim):
            continue
        model = _meta_build(lambda a=arch: open_clip.create_model(a, pretrained=None, device="meta"))
        state = dict(shapes)
        if "logit_scale" in state and state["logit_scale"] != tuple(model.logit_scale.shape):
            state["logit_scale"] = tuple(model.logit_scale.shape)
        n = _confirm(model, state)
        if n is None:
            continue
        return ArchGuess(
            family="clip", builder="open_clip", arch=arch, options=(), num_classes=None,
            summary=f"CLIP {arch} (open_clip), {grid * patch} px, {embed_dim}-d embeddings, {_params(n)}",
            num_params=n)
    return None


# ---------------------------------------------------------------------------- torchvision ViT
def _torchvision_vit(shapes: dict, filename: str) -> ArchGuess | None:
    if "conv_proj.weight" not in shapes or "encoder.pos_embedding" not in shapes:
        return None
    import torchvision

    d, _, p, _ = shapes["conv_proj.weight"]
    depth = _count(shapes, r"encoder\.layers\.encoder_layer_(\d+)\.")
    arch = TORCHVISION_VITS.get((d, depth, p))
    grid = _grid(shapes["encoder.pos_embedding"][1] - 1)
    if arch is None or grid is None:
        return None
    num_classes = shapes["heads.head.weight"][0] if "heads.head.weight" in shapes else None
    if num_classes is None:
        return None
    options = {}
    if grid * p != 224:
        options["image_size"] = grid * p
    if num_classes != 1000:
        options["num_classes"] = num_classes
    model = _meta_build(lambda: torchvision.models.get_model(arch, weights=None, **options))
    n = _confirm(model, shapes)
    if n is None:
        return None
    letter = VIT_SIZES[d][1]
    return ArchGuess(
        family="vit", builder="torchvision_vit", arch=arch,
        options=tuple((k, str(v)) for k, v in options.items()), num_classes=num_classes,
        summary=f"torchvision ViT-{letter}/{p}, {grid * p} px, {_classes(num_classes)}, {_params(n)}",
        num_params=n)


# ---------------------------------------------------------------------------- timm ViT / DeiT
def _timm_vit(shapes: dict, filename: str) -> ArchGuess | None:
    if not {"patch_embed.proj.weight", "pos_embed", "cls_token", "blocks.0.attn.qkv.weight"} <= shapes.keys():
        return None
    import timm

    d, c, p, _ = shapes["patch_embed.proj.weight"]
    if d not in VIT_SIZES or c != 3:
        return None
    size, letter, heads, usual_depth = VIT_SIZES[d]
    depth = _count(shapes, r"blocks\.(\d+)\.")
    distilled = "dist_token" in shapes
    prefix = 2 if distilled else 1
    grid = _grid(shapes["pos_embed"][1] - prefix)
    if grid is None:
        return None
    img = grid * p
    num_classes = shapes["head.weight"][0] if "head.weight" in shapes else 0

    options: dict[str, object] = {}
    name = f"deit_{size}_distilled_patch{p}_{img}" if distilled else f"vit_{size}_patch{p}_{img}"
    if not timm.is_model(name):
        if distilled:
            return None
        # a standard ViT at another resolution / depth: the 224 model with its sizes set
        name = f"vit_{size}_patch{p}_224" if timm.is_model(f"vit_{size}_patch{p}_224") else "vit_base_patch16_224"
        options.update(img_size=img, patch_size=p, embed_dim=d, num_heads=heads)
    if depth != usual_depth:
        options.update(depth=depth)
    if num_classes != 1000:
        options["num_classes"] = num_classes
    if "fc_norm.weight" in shapes and "norm.weight" not in shapes:
        options["global_pool"] = "avg"  # e.g. MAE / BEiT-style fine-tunes: mean of patch tokens
    model = _meta_build(lambda: timm.create_model(name, pretrained=False, **options))
    n = _confirm(model, shapes)
    if n is None:
        return None
    kind = "DeiT" if distilled else "ViT"
    extra = " (distilled)" if distilled else ""
    return ArchGuess(
        family="vit", builder="timm", arch=name,
        options=tuple((k, str(v)) for k, v in options.items()), num_classes=num_classes,
        summary=f"timm {kind}-{letter}/{p}{extra}, {img} px, {_classes(num_classes)}, {_params(n)}",
        num_params=n)


# ---------------------------------------------------------------------------- EfficientNet-Lite
def _efficientnet_pytorch(shapes: dict, filename: str) -> ArchGuess | None:
    """EfficientNet-PyTorch key names (``_blocks.N._depthwise_conv``), as in the packaged Lite0."""
    if "_conv_stem.weight" not in shapes or "_blocks.0._depthwise_conv.weight" not in shapes:
        return None
    if any("_se_" in k for k in shapes):  # squeeze-excitation: a full EfficientNet, not a Lite
        return None
    import timm

    from engine.models.efficientnet_lite import map_key

    try:
        mapped = {map_key(k): s for k, s in shapes.items()}
    except (KeyError, IndexError):
        return None
    if len(mapped) != len(shapes) or mapped.get("classifier.weight", (0,))[0] != 1000:
        return None  # the packaged-weights builder maps names onto a 1000-class tf_efficientnet_lite0
    model = _meta_build(lambda: timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000))
    n = _confirm(model, mapped)
    if n is None:
        return None
    return ArchGuess(
        family="classifier", builder="efficientnet_lite", arch="tf_efficientnet_lite0",
        num_classes=1000, summary=f"EfficientNet-Lite0 (EfficientNet-PyTorch names), 224 px, 1000 classes, {_params(n)}",
        num_params=n)


def _timm_efficientnet_lite(shapes: dict, filename: str) -> ArchGuess | None:
    """timm key names (``blocks.S.I.conv_dw``); Lite models have no squeeze-excitation."""
    if "conv_stem.weight" not in shapes or "blocks.0.0.conv_dw.weight" not in shapes:
        return None
    if any(".se." in k for k in shapes):
        return None
    import timm

    num_classes = shapes["classifier.weight"][0] if "classifier.weight" in shapes else 0
    # The weights cannot tell TF "same" padding (tf_ ports of the TF-Lite release) from timm's own.
    tf = "tf_" in filename or "tflite" in filename
    for i in range(5):
        arch = f"{'tf_' if tf else ''}efficientnet_lite{i}"
        model = _meta_build(lambda a=arch: timm.create_model(a, pretrained=False, num_classes=num_classes))
        n = _confirm(model, shapes)
        if n is not None:
            options = (("num_classes", str(num_classes)),) if num_classes != 1000 else ()
            return ArchGuess(
                family="classifier", builder="timm", arch=arch, options=options,
                num_classes=num_classes,
                summary=f"timm EfficientNet-Lite{i}, {_classes(num_classes)}, {_params(n)}", num_params=n)
    return None
