"""ALBEF, "align before fuse" (Li et al. 2021), at Fashion-MNIST scale.

Three encoders, the paper's names:

    image_embeds = visual(x)                         # (N, 1+L, Dv): ViT [CLS] + patch tokens
    text_embeds  = text(locked MiniLM tokens)        # (N, T, W): one trainable layer on top
    image_feat   = normalise(image_proj(image_embeds[:, 0]))            # (N, D)  ITC
    text_feat    = normalise(text_proj(mean over real text tokens))     # (N, D)  ITC
    fused        = fusion(text_embeds, image_embeds) # text self-attends, then cross-attends
    itm_logits   = itm_head(fused[:, 0])             # (N, 2): not match / match

ITC is CLIP's loss against a queue of momentum features (MoCo's dictionary); its targets
are mixed with the momentum model's own similarities (momentum distillation, `itc_targets`).
ITM is trained on hard negatives drawn from the in-batch ITC similarities
(`sample_hard_negatives`). Masked language modelling is left out: the captions are
template sentences, so filling in a masked word would teach little here.

The text side is the locked MiniLM of the LiT recipe (its token states, not its pooled
sentence vector) plus one trainable transformer layer; MiniLM stays outside the module
tree (not trained, not saved), as in engine.models.lit.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from engine.configs import reject_unknown_keys
from engine.errors import ModelError
from engine.models.registry import register_builder
from engine.models.locked import LockedMiniLM, build_minilm
from engine.models.momentum import frozen_copy, momentum_update


@dataclass(frozen=True)
class ALBEFConfig:
    vision: dict = field(default_factory=dict)  # engine.models.vit.ViTConfig fields (num_classes 0)
    embed_dim: int = 128  # the ITC space
    width: int = 128  # text and fusion width (the ViT's embed_dim, so cross-attention needs no resize)
    text_dim: int = 384  # MiniLM's token width
    heads: int = 4
    fusion_layers: int = 2
    queue_size: int = 2048
    momentum: float = 0.995
    init_temperature: float = 0.07

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ALBEFConfig":
        reject_unknown_keys(cls, d, "ALBEF")
        return cls(**d)


# ---------------------------------------------------------------------------- losses
def itc_targets(sim_m: torch.Tensor, positives: torch.Tensor, alpha: float) -> torch.Tensor:
    """Momentum distillation: alpha · softmax(momentum similarities) + (1 - alpha) · one-hot.

    sim_m: (N, M) momentum logits (already divided by the temperature); positives: (N, M) bool,
    the pairs the captions say match (several when captions share a class). alpha = 0 gives the
    plain targets, positives normalised per row."""
    hard = positives.float() / positives.float().sum(1, keepdim=True).clamp_min(1.0)
    if alpha <= 0:
        return hard
    return alpha * F.softmax(sim_m, dim=1) + (1.0 - alpha) * hard


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -(F.log_softmax(logits, dim=1) * targets).sum(1).mean()


def sample_hard_negatives(sim: torch.Tensor, same: torch.Tensor, generator: torch.Generator | None = None):
    """One negative column per row, drawn with probability softmax(sim) over the columns that
    are not positives (ALBEF's hard negatives: similar but wrong).

    sim: (N, N) in-batch logits; same: (N, N) bool, True where the pair is a positive (same
    caption class, the diagonal included). Returns (index (N,), valid (N,) bool): rows whose
    every column is a positive have no negative and are invalid."""
    weights = F.softmax(sim.float(), dim=1).masked_fill(same, 0.0)
    valid = ~same.all(1)
    weights = torch.where(valid[:, None], weights + (~same).float() * 1e-12, torch.ones_like(weights))
    idx = torch.multinomial(weights.cpu(), 1, generator=generator).squeeze(1).to(sim.device)
    return idx, valid


# ---------------------------------------------------------------------------- layers
class CrossAttention(nn.Module):
    """Text queries attend to image tokens. Keeps the attention probabilities (with their
    gradient, when asked) for ALBEF's Grad-CAM."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.save_attention = False
        self.attention: torch.Tensor | None = None  # (N, heads, T, 1+L)

    def forward(self, text: torch.Tensor, image: torch.Tensor, key_pad: torch.Tensor | None = None) -> torch.Tensor:
        """key_pad (N, 1+L) bool: keys to ignore (ViLT passes its sequence twice, padding and all)."""
        N, T, W = text.shape
        h, d = self.heads, W // self.heads
        q = self.q(text).view(N, T, h, d).transpose(1, 2)  # (N, h, T, d)
        k, v = self.kv(image).view(N, image.shape[1], 2, h, d).permute(2, 0, 3, 1, 4)  # each (N, h, 1+L, d)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (N, h, T, 1+L)
        if key_pad is not None:
            scores = scores.masked_fill(key_pad[:, None, None, :], float("-inf"))
        attn = scores.softmax(-1)
        if self.save_attention:
            attn.retain_grad()
            self.attention = attn
        return self.out((attn @ v).transpose(1, 2).reshape(N, T, W))


class FusionLayer(nn.Module):
    """Pre-norm: text self-attention, cross-attention to the image, MLP."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.self_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.cross_attn = CrossAttention(width, heads)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, text, pad, image):
        y = self.norm1(text)
        text = text + self.self_attn(y, y, y, key_padding_mask=pad, need_weights=False)[0]
        text = text + self.cross_attn(self.norm2(text), image)
        return text + self.mlp(self.norm3(text))


class TextEncoder(nn.Module):
    """Locked MiniLM token states (N, T, 384) -> (N, T, width): a projection and one layer."""

    def __init__(self, cfg: ALBEFConfig):
        super().__init__()
        self.adapter = nn.Sequential(nn.Linear(cfg.text_dim, cfg.width), nn.LayerNorm(cfg.width))
        self.layer = nn.TransformerEncoderLayer(cfg.width, cfg.heads, 2 * cfg.width, dropout=0.0,
                                                batch_first=True, norm_first=True)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.layer(self.adapter(tokens), src_key_padding_mask=~mask)


def mean_pool(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    w = mask.unsqueeze(-1).to(tokens.dtype)  # (N, T, 1)
    return (tokens * w).sum(1) / w.sum(1).clamp_min(1.0)


class Unimodal(nn.Module):
    """The encoders ITC aligns: image and text towers with their projections. ALBEF keeps a
    momentum copy of exactly this part."""

    def __init__(self, cfg: ALBEFConfig):
        super().__init__()
        from engine.models.vit import ViTConfig, build_vit

        vcfg = ViTConfig.from_dict({**cfg.vision, "num_classes": 0})
        if vcfg.embed_dim != cfg.width:
            raise ModelError(f"the ViT width {vcfg.embed_dim} must equal the fusion width {cfg.width}")
        self.vit_config = vcfg
        self.visual = build_vit(vcfg)
        self.text = TextEncoder(cfg)
        self.image_proj = nn.Linear(cfg.width, cfg.embed_dim)
        self.text_proj = nn.Linear(cfg.width, cfg.embed_dim)

    def image(self, x: torch.Tensor):
        """-> (image_embeds (N, 1+L, W), image_feat (N, D) normalised)."""
        embeds = self.visual.forward_features(x)  # (N, 1+L, W), after the final norm
        return embeds, F.normalize(self.image_proj(embeds[:, 0]), dim=-1)

    def text_side(self, tokens: torch.Tensor, mask: torch.Tensor):
        """-> (text_embeds (N, T, W), text_feat (N, D) normalised)."""
        embeds = self.text(tokens, mask)
        return embeds, F.normalize(self.text_proj(mean_pool(embeds, mask)), dim=-1)


class ALBEF(LockedMiniLM):
    def __init__(self, cfg: ALBEFConfig, minilm: nn.Module | None):
        super().__init__()
        self.config = cfg
        self.unimodal = Unimodal(cfg)
        self.fusion = nn.ModuleList([FusionLayer(cfg.width, cfg.heads) for _ in range(cfg.fusion_layers)])
        self.fusion_norm = nn.LayerNorm(cfg.width)
        self.itm_head = nn.Linear(cfg.width, 2)
        self.temp = nn.Parameter(torch.tensor(cfg.init_temperature))
        if minilm is not None:
            self.lock(minilm)  # follows .to(), is neither trained nor saved

    @property
    def grid(self) -> tuple[int, int]:
        side = self.unimodal.vit_config.img_size // self.unimodal.vit_config.patch_size
        return side, side

    def fuse(self, text_embeds, text_mask, image_embeds) -> torch.Tensor:
        """-> ITM logits (N, 2) from the fused [CLS] text token."""
        x, pad = text_embeds, ~text_mask
        for layer in self.fusion:
            x = layer(x, pad, image_embeds)
        return self.itm_head(self.fusion_norm(x)[:, 0])

    def clamp_temperature(self) -> None:
        with torch.no_grad():  # ALBEF keeps the learned temperature in [0.001, 0.5]
            self.temp.clamp_(0.001, 0.5)


class Momentum(nn.Module):
    """The momentum copy of the unimodal encoders and the queues of its features (with the
    caption class of each, so a queued feature of the caption's class counts as a positive)."""

    def __init__(self, model: ALBEF):
        super().__init__()
        cfg = model.config
        self.m = cfg.momentum
        self.unimodal = frozen_copy(model.unimodal)
        K = cfg.queue_size
        self.register_buffer("image_queue", F.normalize(torch.randn(cfg.embed_dim, K), dim=0))
        self.register_buffer("text_queue", F.normalize(torch.randn(cfg.embed_dim, K), dim=0))
        self.register_buffer("class_queue", torch.full((K,), -1, dtype=torch.long))  # -1: a random start vector
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def update(self, model: ALBEF) -> None:
        momentum_update(self.unimodal, model.unimodal, self.m)

    @torch.no_grad()
    def enqueue(self, image_feat, text_feat, classes) -> None:
        K = self.image_queue.shape[1]
        image_feat, text_feat, classes = image_feat[-K:], text_feat[-K:], classes[-K:]
        ptr = int(self.queue_ptr)
        idx = (ptr + torch.arange(len(classes), device=classes.device)) % K
        self.image_queue[:, idx] = image_feat.t().to(self.image_queue.dtype)
        self.text_queue[:, idx] = text_feat.t().to(self.text_queue.dtype)
        self.class_queue[idx] = classes
        self.queue_ptr[0] = (ptr + len(classes)) % K

    def queue_fill(self) -> float:
        return float((self.class_queue >= 0).float().mean())


# ---------------------------------------------------------------------------- building
def build_albef(cfg: ALBEFConfig, with_text: bool = True) -> ALBEF:
    return ALBEF(cfg, build_minilm() if with_text else None)


def load_albef(weights: str | Path) -> ALBEF:
    """The model described by the card beside `weights`, with those weights, in eval mode."""
    from engine.models.builders import load_from_card

    return load_from_card(weights, ALBEFConfig.from_dict, build_albef, "ALBEF model_config")


@register_builder("albef")
def build_from_run(entry, path):
    """Catalogue builder for ALBEF runs trained in the app, and (as build_from_resources) for
    the built-in ALBEF under resources/checkpoints/."""
    return load_albef(path)


build_from_resources = build_from_run
