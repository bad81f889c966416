"""A small Vision Transformer for small images (Fashion-MNIST's 28×28 grayscale and up).

Built on timm's VisionTransformer, so the rest of Patchwork (attention maps, the
catalogue) treats it like any timm ViT; timm's Attention uses fused SDPA
(F.scaled_dot_product_attention) when its fused_attn flag is on, which is timm's default.
A 28-pixel image with patch size 7 is 4×4 = 16 patch tokens plus [CLS]. (Patch size 4,
7×7 = 49 tokens, was measured too: on a CPU it learned Fashion-MNIST about 1.6× slower
per step and needed more samples for the same accuracy; set patch_size=4 for finer
attention maps.)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from engine.configs import reject_unknown_keys
from engine.errors import ModelError
from engine.models.registry import register_builder


@dataclass(frozen=True)
class ViTConfig:
    img_size: int = 28
    in_chans: int = 1
    patch_size: int = 7
    embed_dim: int = 128
    depth: int = 6
    num_heads: int = 4
    mlp_ratio: float = 2.0
    num_classes: int = 10
    drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    global_pool: str = "token"  # "token": the classifier reads [CLS]; "avg": the mean of the patch tokens

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ViTConfig":
        reject_unknown_keys(cls, d, "ViT")
        return cls(**d)


#: Presets for small images (sizes at 28×28, 10 classes). tiny: 0.80M parameters (3.2 MB),
#: small: 2.7M (11 MB).
PRESETS = {
    "tiny": dict(embed_dim=128, depth=6, num_heads=4, mlp_ratio=2.0),
    "small": dict(embed_dim=192, depth=9, num_heads=3, mlp_ratio=2.0),
}


def patch_size_for(img_size: int) -> int:
    """A patch size that divides the image into a grid of about img_size / 7 tokens a side,
    kept between 4 and 14: 7 for 28 px (4×4), 8 for 32 or 64 px, 16 for 224 px (14×14)."""
    target = min(14, max(4, img_size // 7))
    divisors = [p for p in range(1, img_size + 1) if img_size % p == 0]
    return min(divisors, key=lambda p: (abs(img_size // p - target), -p))


def vit_config(preset: str = "tiny", *, img_size: int = 28, in_chans: int = 1, num_classes: int = 10,
               **overrides) -> ViTConfig:
    """The `preset` for this image size and class count; `overrides` (None values ignored) win."""
    if preset not in PRESETS:
        raise ModelError(f"unknown ViT preset {preset!r}; choose one of {', '.join(PRESETS)}")
    cfg = ViTConfig(img_size=img_size, in_chans=in_chans, num_classes=num_classes,
                    patch_size=patch_size_for(img_size), **PRESETS[preset])
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    if cfg.img_size % cfg.patch_size:
        raise ModelError(f"patch size {cfg.patch_size} does not divide the image size {cfg.img_size}")
    if cfg.embed_dim % cfg.num_heads:
        raise ModelError(f"embed_dim {cfg.embed_dim} is not divisible by num_heads {cfg.num_heads}")
    return cfg


def build_vit(cfg: ViTConfig):
    """A fresh timm VisionTransformer (class token, learned position embeddings, token pooling)."""
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        img_size=cfg.img_size, patch_size=cfg.patch_size, in_chans=cfg.in_chans, num_classes=cfg.num_classes,
        embed_dim=cfg.embed_dim, depth=cfg.depth, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio,
        qkv_bias=True, class_token=True, global_pool=cfg.global_pool, drop_rate=cfg.drop_rate,
        drop_path_rate=cfg.drop_path_rate)


def load_trained(weights: str | Path):
    """The ViT described by the card beside `weights`, with those weights, in eval mode (CPU)."""
    from engine.models.builders import load_from_card

    return load_from_card(weights, ViTConfig.from_dict, build_vit)


@register_builder("vit")
def build_from_run(entry, path):
    """Catalogue builder for runs trained in the app (card.json beside model.safetensors), and
    (as build_from_resources) for the built-in checkpoints under resources/checkpoints/."""
    return load_trained(path)


build_from_resources = build_from_run
