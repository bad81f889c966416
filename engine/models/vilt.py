"""ViLT (Kim et al. 2021): one transformer over text tokens and raw image patches, at
Fashion-MNIST scale.

    text  = text_embed(locked MiniLM tokens) + text_pos + type[0]       # (N, T, W)
    image = patch_embed(x) + image_pos + type[1]                        # (N, L, W): a linear
            projection of the raw patches, ViLT's cheap visual embedding (no CNN, no detector)
    seq   = layers([text, image])    # every token attends to every token (single stream)
    itm_logits = itm_head(norm(seq)[:, 0])                              # (N, 2) on the [CLS] token

Unlike ALBEF there are no separate image and caption embeddings to compare: every
(image, caption) pair needs a full pass, so a photo collection cannot be indexed once and
searched cheaply. The text side is ALBEF's: the locked MiniLM's token states (outside the
module tree: not trained, not saved), here projected to the transformer width.
The attention layer is ALBEF's CrossAttention with the sequence as both queries and keys,
so the match job's Grad-CAM reads its attention the same way.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from engine.configs import reject_unknown_keys
from engine.errors import ModelError
from engine.models.registry import register_builder
from engine.models.albef import CrossAttention
from engine.models.locked import LockedMiniLM, build_minilm


@dataclass(frozen=True)
class ViLTConfig:
    img_size: int = 28
    in_chans: int = 1
    patch_size: int = 7  # a 4×4 grid of 7-pixel patches, as the tiny ViTs here
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 2
    text_dim: int = 384  # MiniLM's token width
    max_text_len: int = 40  # word pieces read, [CLS] and [SEP] included

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ViLTConfig":
        reject_unknown_keys(cls, d, "ViLT")
        return cls(**d)


class ViLTLayer(nn.Module):
    """Pre-norm: self-attention over the whole sequence (padding keys masked), MLP."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = CrossAttention(width, heads)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.attn(y, y, pad)
        return x + self.mlp(self.norm2(x))


class ViLT(LockedMiniLM):
    def __init__(self, cfg: ViLTConfig, minilm: nn.Module | None):
        super().__init__()
        if cfg.img_size % cfg.patch_size or cfg.width % cfg.heads:
            raise ModelError("ViLT: img_size must be a multiple of patch_size, width a multiple of heads")
        self.config = cfg
        side = cfg.img_size // cfg.patch_size
        self.patch_embed = nn.Conv2d(cfg.in_chans, cfg.width, cfg.patch_size, cfg.patch_size)  # linear per patch
        self.text_embed = nn.Sequential(nn.Linear(cfg.text_dim, cfg.width), nn.LayerNorm(cfg.width))
        self.text_pos = nn.Parameter(torch.zeros(1, cfg.max_text_len, cfg.width))
        self.image_pos = nn.Parameter(torch.zeros(1, side * side, cfg.width))
        self.type_embed = nn.Embedding(2, cfg.width)  # 0: text, 1: image
        self.layers = nn.ModuleList([ViLTLayer(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(cfg.width)
        self.itm_head = nn.Linear(cfg.width, 2)
        nn.init.trunc_normal_(self.text_pos, std=0.02)
        nn.init.trunc_normal_(self.image_pos, std=0.02)
        if minilm is not None:
            self.lock(minilm)  # follows .to(), is neither trained nor saved

    @property
    def grid(self) -> tuple[int, int]:
        side = self.config.img_size // self.config.patch_size
        return side, side

    def embed_image(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (N, C, S, S) -> patch tokens (N, L, W)."""
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)
        return patches + self.image_pos + self.type_embed.weight[1]

    def embed_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """MiniLM token states (N, T, 384) -> text tokens (N, T, W)."""
        T = tokens.shape[1]
        if T > self.config.max_text_len:
            raise ModelError(f"ViLT reads at most {self.config.max_text_len} word pieces ({T} given)")
        return self.text_embed(tokens) + self.text_pos[:, :T] + self.type_embed.weight[0]

    def fuse(self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Embedded text (N, T, W) with its mask (N, T) and image tokens (N, L, W) -> ITM logits (N, 2)."""
        seq = torch.cat([text, image], 1)
        pad = torch.cat([~text_mask, text_mask.new_zeros(image.shape[:2])], 1)
        for layer in self.layers:
            seq = layer(seq, pad)
        return self.itm_head(self.norm(seq)[:, 0])

    def forward(self, x, tokens, mask) -> torch.Tensor:
        return self.fuse(self.embed_text(tokens), mask, self.embed_image(x))


def build_vilt(cfg: ViLTConfig, with_text: bool = True) -> ViLT:
    return ViLT(cfg, build_minilm() if with_text else None)


def load_vilt(weights: str | Path) -> ViLT:
    """The model described by the card beside `weights`, with those weights, in eval mode."""
    from engine.models.builders import load_from_card

    return load_from_card(weights, ViLTConfig.from_dict, build_vilt, "ViLT model_config")


@register_builder("vilt")
def build_from_run(entry, path):
    """Catalogue builder for ViLT runs trained in the app and (as build_from_resources) the built-in one."""
    return load_vilt(path)


build_from_resources = build_from_run
