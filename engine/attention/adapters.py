"""One view of every model the Attention panel accepts: where its attention layers are, its
token layout, and how to get a class score (or an embedding) from an input batch.

Recognised by module type, not by catalogue family, so user imports and runs trained in
the app work too:
  timm VisionTransformer (ViT, DeiT, the built-in Fashion-MNIST ViT, trained runs)
  torchvision VisionTransformer (ViT-B/16 ...)
  open_clip CLIP / its VisionTransformer visual tower
  Patchwork's MaskedAutoencoderViT (its encoder, all patches visible)
  timm CNNs with forward_features/forward_head (EfficientNet-Lite0): Grad-CAM/EigenCAM only
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.errors import ModelError


@dataclass(frozen=True)
class Spec:
    """The token picture of a loaded model (plain data; goes to the GUI)."""

    kind: str  # "timm-vit", "torchvision-vit", "open_clip", "mae", "cnn"
    img_size: tuple[int, int]
    in_chans: int
    grid: tuple[int, int]  # (h, w) patch grid, or the CAM feature map's size for a CNN
    embed_dim: int  # D for a ViT; C of the CAM feature map for a CNN
    patch: tuple[int, int] = (0, 0)  # (ph, pw); (0, 0) for a CNN
    depth: int = 0
    num_heads: int = 0
    prefix_names: tuple[str, ...] = ()  # tokens before the patches, e.g. ("CLS",) or ("CLS", "DIST")
    pooling: str = "cls"  # what the head reads: "cls", "avg", "map", "embedding"
    has_classes: bool = True  # False: an embedding (CLIP image tower, MAE encoder)
    feature_layer: str = ""  # for a CNN: the module whose output Grad-CAM reads

    @property
    def is_vit(self) -> bool:
        return self.kind != "cnn"

    @property
    def prefix(self) -> int:
        return len(self.prefix_names)

    @property
    def num_tokens(self) -> int:
        return self.prefix + self.grid[0] * self.grid[1]

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads if self.num_heads else 0


class Adapter:
    """Base: `scores(x)` returns (B, K) class scores or (B, D) embeddings."""

    spec: Spec
    model: nn.Module

    def attention_modules(self) -> list[nn.Module]:
        return []

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


class TimmViT(Adapter):
    def __init__(self, model):
        self.model = model
        pe = model.patch_embed
        prefix = []
        if getattr(model, "cls_token", None) is not None:
            prefix.append("CLS")
        if getattr(model, "dist_token", None) is not None:
            prefix.append("DIST")
        prefix += ["REG"] * int(getattr(model, "num_reg_tokens", 0) or 0)
        if len(prefix) != model.num_prefix_tokens:
            prefix = ["CLS"] + ["REG"] * (model.num_prefix_tokens - 1) if model.num_prefix_tokens else []
        pool = "map" if getattr(model, "attn_pool", None) is not None else \
            ("cls" if model.global_pool == "token" else model.global_pool or "none")
        self.spec = Spec(
            kind="timm-vit", img_size=_pair(pe.img_size), in_chans=pe.proj.in_channels, grid=_pair(pe.grid_size),
            embed_dim=model.embed_dim, patch=_pair(pe.patch_size), depth=len(model.blocks),
            num_heads=model.blocks[0].attn.num_heads, prefix_names=tuple(prefix), pooling=pool,
            has_classes=getattr(model, "num_classes", 0) > 0)

    def attention_modules(self):
        return [b.attn for b in self.model.blocks]


class TorchvisionViT(Adapter):
    def __init__(self, model):
        self.model = model
        layers = model.encoder.layers
        g = model.image_size // model.patch_size
        self.spec = Spec(
            kind="torchvision-vit", img_size=(model.image_size,) * 2, in_chans=model.conv_proj.in_channels,
            grid=(g, g), embed_dim=model.hidden_dim, patch=(model.patch_size,) * 2, depth=len(layers),
            num_heads=layers[0].self_attention.num_heads, prefix_names=("CLS",), pooling="cls")

    def attention_modules(self):
        return [layer.self_attention for layer in self.model.encoder.layers]


class OpenClipVisual(Adapter):
    """The image tower of an open_clip CLIP: scores are the (unnormalised) image embedding."""

    def __init__(self, model):
        self.model = model
        visual = model.visual if hasattr(model, "visual") else model
        self.visual = visual
        blocks = visual.transformer.resblocks
        attn = blocks[0].attn
        if not isinstance(attn, nn.MultiheadAttention):
            raise ModelError("attention maps need open_clip's standard attention blocks (not its custom ones)")
        self.spec = Spec(
            kind="open_clip", img_size=_pair(visual.image_size), in_chans=visual.conv1.in_channels,
            grid=_pair(visual.grid_size), embed_dim=visual.transformer.width, patch=_pair(visual.patch_size),
            depth=len(blocks), num_heads=attn.num_heads, prefix_names=("CLS",),
            pooling="map" if getattr(visual, "attn_pool", None) is not None else
            ("cls" if getattr(visual, "pool_type", "tok") == "tok" else "avg"), has_classes=False)

    def attention_modules(self):
        return [b.attn for b in self.visual.transformer.resblocks]

    def scores(self, x):
        out = self.visual(x)
        return out[0] if isinstance(out, tuple) else out  # (B, D) embedding


class MAEEncoder(Adapter):
    """Patchwork's MAE: its encoder over all patches, in patch order (no masking)."""

    def __init__(self, model):
        self.model = model
        cfg = model.config
        g = cfg.img_size // cfg.patch_size
        self.spec = Spec(
            kind="mae", img_size=(cfg.img_size,) * 2, in_chans=cfg.in_chans, grid=(g, g), embed_dim=cfg.embed_dim,
            patch=(cfg.patch_size,) * 2, depth=cfg.depth, num_heads=cfg.num_heads, prefix_names=("CLS",),
            pooling="embedding", has_classes=False)

    def attention_modules(self):
        return [b.attn for b in self.model.blocks]

    def scores(self, x):
        length = self.spec.grid[0] * self.spec.grid[1]
        # increasing noise keeps every patch in its own order (mask ratio 0: nothing is removed)
        noise = torch.arange(length, device=x.device, dtype=torch.float32).expand(x.shape[0], -1) / length  # (B, L)
        latent = self.model.forward_encoder(x, 0.0, noise=noise)[0]  # (B, 1 + L, D)
        return latent[:, 0]  # (B, D): the [CLS] embedding


class TimmCNN(Adapter):
    """A timm CNN: Grad-CAM and EigenCAM read the last feature map (forward_features)."""

    def __init__(self, model, sample_size: int):
        self.model = model
        in_chans = 3
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                in_chans = m.in_channels
                break
        with torch.no_grad():
            p = next(model.parameters())
            feats = model.forward_features(torch.zeros(1, in_chans, sample_size, sample_size, device=p.device,
                                                       dtype=p.dtype))
        if feats.dim() != 4:
            raise ModelError(f"{type(model).__name__}: its features are not a spatial map, so no CAM can be drawn")
        _, c, h, w = feats.shape
        self.spec = Spec(kind="cnn", img_size=(sample_size,) * 2, in_chans=in_chans, grid=(h, w), embed_dim=c,
                         pooling="avg", has_classes=getattr(model, "num_classes", 0) > 0,
                         feature_layer=_last_feature_module(model))

    def features(self, x):
        return self.model.forward_features(x)  # (B, C, h, w)

    def head(self, feats):
        return self.model.forward_head(feats)  # (B, K)


def _last_feature_module(model) -> str:
    """The name of the last module of forward_features, for the token view (e.g. conv_head + bn2)."""
    names = [n for n, _ in model.named_children() if n not in ("global_pool", "classifier", "head", "fc", "head_drop")]
    return " + ".join(names[-2:]) if names else "features"


def adapt(model: nn.Module, input_size: int = 224) -> Adapter:
    """The adapter for a loaded catalogue model; ModelError for models without maps."""
    kinds = []
    try:
        from timm.models.vision_transformer import VisionTransformer as TimmVisionTransformer

        kinds.append((TimmVisionTransformer, TimmViT))
    except ImportError:
        pass
    try:
        from torchvision.models.vision_transformer import VisionTransformer as TVVisionTransformer

        kinds.append((TVVisionTransformer, TorchvisionViT))
    except ImportError:
        pass
    from engine.models.mae import MaskedAutoencoderViT

    kinds.append((MaskedAutoencoderViT, MAEEncoder))
    for cls, adapter in kinds:
        if isinstance(model, cls):
            return adapter(model)
    try:
        from open_clip.transformer import VisionTransformer as ClipVisionTransformer

        if isinstance(model, ClipVisionTransformer) or isinstance(getattr(model, "visual", None),
                                                                  ClipVisionTransformer):
            return OpenClipVisual(model)
    except ImportError:
        pass
    if hasattr(model, "forward_features") and hasattr(model, "forward_head"):
        return TimmCNN(model, input_size)
    raise ModelError(f"no attention maps for {type(model).__name__}: the Attention panel takes timm, torchvision "
                     "and open_clip ViTs, Patchwork's MAE, and timm CNNs (Grad-CAM/EigenCAM)")
