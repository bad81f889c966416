"""The unCLIP decoder: a small U-Net that predicts the noise ε in a 28×28 image, given the
timestep and a CLIP image embedding.

As in GLIDE/DALL·E 2, the image embedding is projected and added to the timestep
embedding, which modulates every residual block (scale and shift after its first norm).
For classifier-free guidance the embedding is replaced by a learned null vector for the
samples whose `keep` flag is False (10% of them in training).

Shapes for the default config (channels 32/64): 28×28×32 → 14×14×64 → 7×7×64 (with
self-attention) → back up with skip connections.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from engine.configs import reject_unknown_keys
from engine.generate.diffusion import timestep_embedding


@dataclass(frozen=True)
class UNetConfig:
    image_size: int = 28
    in_channels: int = 1
    channels: tuple[int, ...] = (32, 64)  # per resolution level; each level halves the size
    mid_channels: int = 64  # at the lowest resolution (7×7), with self-attention
    cond_dim: int = 128  # the CLIP image embedding
    time_dim: int = 128
    groups: int = 8  # GroupNorm groups

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        reject_unknown_keys(cls, d, "U-Net")
        d = dict(d)
        if "channels" in d:
            d["channels"] = tuple(d["channels"])
        return cls(**d)


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, modulated by the (time + embedding) vector, twice; plus a skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)  # scale and shift
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)  # B x C x 1 x 1 each
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the H·W positions of a small feature map."""

    def __init__(self, channels: int, groups: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        self.heads = heads

    def forward(self, x):
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, self.heads, C // self.heads, H * W).unbind(1)
        # each B x heads x C/heads x HW -> B x heads x HW x C/heads for SDPA
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        out = out.transpose(-1, -2).reshape(B, C, H, W)
        return x + self.proj(out)


class UNet(nn.Module):
    def __init__(self, cfg: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = cfg
        emb_dim = 4 * cfg.time_dim // 2  # 256 for time_dim 128
        self.time_mlp = nn.Sequential(nn.Linear(cfg.time_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.cond_mlp = nn.Sequential(nn.Linear(cfg.cond_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.null_cond = nn.Parameter(torch.zeros(cfg.cond_dim))  # the "no embedding" input for guidance
        c0 = cfg.channels[0]
        self.conv_in = nn.Conv2d(cfg.in_channels, c0, 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        c = c0
        skips = []
        for ch in cfg.channels:
            self.down_blocks.append(ResBlock(c, ch, emb_dim, cfg.groups))
            skips.append(ch)
            self.downsamples.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
            c = ch
        self.mid1 = ResBlock(c, cfg.mid_channels, emb_dim, cfg.groups)
        self.mid_attn = SelfAttention(cfg.mid_channels, cfg.groups)
        self.mid2 = ResBlock(cfg.mid_channels, cfg.mid_channels, emb_dim, cfg.groups)
        c = cfg.mid_channels
        self.upsamples = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for ch, skip in zip(reversed(cfg.channels), reversed(skips)):
            # at the lower resolution, before the nearest-neighbour ×2: 4× cheaper than after it
            self.upsamples.append(nn.Conv2d(c, ch, 3, padding=1))
            self.up_blocks.append(ResBlock(ch + skip, ch, emb_dim, cfg.groups))
            c = ch
        self.norm_out = nn.GroupNorm(cfg.groups, c)
        self.conv_out = nn.Conv2d(c, cfg.in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x, t, cond, keep=None):
        """x: (B, 1, 28, 28) noisy image; t: (B,) timesteps; cond: (B, cond_dim) image embedding;
        keep: (B,) bool, False where the embedding is dropped (the null vector is used) -> ε."""
        if keep is not None:
            cond = torch.where(keep[:, None], cond, self.null_cond.to(cond.dtype)[None])
        emb = self.time_mlp(timestep_embedding(t, self.config.time_dim).to(x.dtype)) + self.cond_mlp(cond)
        h = self.conv_in(x)
        skips = []
        for block, down in zip(self.down_blocks, self.downsamples):
            h = block(h, emb)
            skips.append(h)
            h = down(h)  # halves H and W (28 -> 14 -> 7)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for up, block in zip(self.upsamples, self.up_blocks):
            skip = skips.pop()
            h = F.interpolate(up(h), size=skip.shape[-2:], mode="nearest")  # 7 -> 14 -> 28
            h = block(torch.cat([h, skip], dim=1), emb)
        return self.conv_out(F.silu(self.norm_out(h)))
