"""The unCLIP prior P(z_i | y): from a caption's CLIP text embedding to a CLIP image embedding.

Two kinds, compared in the built-in model's card:

* DiffusionPrior: a Gaussian diffusion over image embeddings that, as in DALL·E 2,
  predicts the *clean* embedding x_0 directly (MSE on x_0) from the noisy embedding, the
  timestep and the text embedding. Sampling it gives different embeddings for one caption,
  so "a photo of a dress" can become different dresses.
* RegressionPrior: a deterministic MLP trained with MSE: it predicts the conditional mean,
  one embedding per caption.

Embeddings are unit vectors in D dimensions; the priors work on them scaled by sqrt(D), so
each component has roughly unit variance, like the diffusion noise.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from engine.configs import reject_unknown_keys
from engine.errors import ModelError
from engine.generate.diffusion import NoiseSchedule, ddim_iter, guided, timestep_embedding

PRIOR_KINDS = ("diffusion", "regression")


@dataclass(frozen=True)
class PriorConfig:
    kind: str = "diffusion"
    embed_dim: int = 128  # the CLIP space: text and image embeddings
    width: int = 128
    depth: int = 3
    time_dim: int = 64

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PriorConfig":
        reject_unknown_keys(cls, d, "prior")
        cfg = cls(**d)
        if cfg.kind not in PRIOR_KINDS:
            raise ModelError(f"unknown prior kind {cfg.kind!r}; choose one of {', '.join(PRIOR_KINDS)}")
        return cfg

    @property
    def scale(self) -> float:
        return math.sqrt(self.embed_dim)


class _Block(nn.Module):
    """Pre-norm residual MLP block, modulated (scale, shift) by the conditioning vector."""

    def __init__(self, width: int, cond: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.film = nn.Linear(cond, 2 * width)
        self.fc1 = nn.Linear(width, 2 * width)
        self.fc2 = nn.Linear(2 * width, width)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h, c):
        scale, shift = self.film(c).chunk(2, dim=-1)
        return h + self.fc2(F.gelu(self.fc1(self.norm(h) * (1 + scale) + shift)))


class DiffusionPrior(nn.Module):
    def __init__(self, cfg: PriorConfig):
        super().__init__()
        self.config = cfg
        D, W = cfg.embed_dim, cfg.width
        self.null_text = nn.Parameter(torch.zeros(D))  # the dropped caption, for guidance
        self.time_mlp = nn.Sequential(nn.Linear(cfg.time_dim, W), nn.SiLU(), nn.Linear(W, W))
        self.text_mlp = nn.Sequential(nn.Linear(D, W), nn.SiLU(), nn.Linear(W, W))
        self.inp = nn.Linear(2 * D, W)  # [z_t, text embedding]
        self.blocks = nn.ModuleList(_Block(W, W) for _ in range(cfg.depth))
        self.out = nn.Sequential(nn.LayerNorm(W), nn.Linear(W, D))

    def forward(self, z_t, t, text, keep=None):
        """z_t: (B, D) noisy scaled embedding; t: (B,); text: (B, D) scaled text embedding;
        keep: (B,) bool, False where the caption is dropped -> predicted clean x_0 (B, D)."""
        if keep is not None:
            text = torch.where(keep[:, None], text, self.null_text.to(text.dtype)[None])
        c = F.silu(self.time_mlp(timestep_embedding(t, self.config.time_dim)) + self.text_mlp(text))
        h = self.inp(torch.cat([z_t, text], dim=-1))
        for block in self.blocks:
            h = block(h, c)
        return self.out(h)


class RegressionPrior(nn.Module):
    def __init__(self, cfg: PriorConfig):
        super().__init__()
        self.config = cfg
        D, W = cfg.embed_dim, cfg.width
        self.inp = nn.Linear(D, W)
        self.blocks = nn.ModuleList(_Block(W, W) for _ in range(cfg.depth))
        self.out = nn.Sequential(nn.LayerNorm(W), nn.Linear(W, D))

    def forward(self, text):
        """text: (B, D) scaled text embedding -> (B, D) predicted scaled image embedding."""
        h = self.inp(text)
        for block in self.blocks:
            h = block(h, h)
        return self.out(h)


def build_prior(cfg: PriorConfig) -> nn.Module:
    return DiffusionPrior(cfg) if cfg.kind == "diffusion" else RegressionPrior(cfg)


@torch.no_grad()
def sample_prior(prior: nn.Module, text_emb: torch.Tensor, *, generator: torch.Generator | None = None,
                 noise: torch.Tensor | None = None, steps: int = 32, guidance: float = 1.0, candidates: int = 1,
                 schedule: NoiseSchedule | None = None) -> torch.Tensor:
    """Unit-norm image embeddings (B, D) for unit-norm text embeddings (B, D).

    The diffusion prior starts from `noise` (B·candidates, D) when given, else draws it from
    `generator` on the CPU. candidates > 1: keep, per caption, the sample most similar to
    the text embedding (DALL·E 2 samples two). The regression prior uses no noise.
    """
    cfg = prior.config
    text = text_emb * cfg.scale
    if cfg.kind == "regression":
        return F.normalize(prior(text), dim=-1)
    schedule = schedule or NoiseSchedule.cosine()
    B, D = text.shape
    k = max(1, int(candidates))
    cond = text.repeat_interleave(k, dim=0)  # B·k x D
    if noise is None:
        noise = torch.randn((B * k, D), generator=generator)
    z = noise.to(text.device, text.dtype)
    for step in ddim_iter(guided(prior, cond, guidance), z, schedule, steps, prediction="x0"):
        z = step.x
    emb = F.normalize(z, dim=-1).view(B, k, D)
    if k == 1:
        return emb[:, 0]
    best = (emb * text_emb[:, None]).sum(-1).argmax(1)  # B
    return emb[torch.arange(B), best]
