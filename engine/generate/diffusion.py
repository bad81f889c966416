"""Gaussian diffusion pieces shared by the decoder and the diffusion prior.

Forward process (DDPM): x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 - ᾱ_t)·ε, with Nichol & Dhariwal's
cosine schedule for ᾱ. Sampling is DDIM (Song et al. 2021) with η = 0 by default, so a
fixed x_T gives a fixed image: the same seed gives the same picture, and interpolating
embeddings under fixed noise gives a smooth strip.

A model predicts either ε (the U-Net decoder) or x_0 (the prior, as in DALL·E 2); the
sampler converts one into the other. Classifier-free guidance mixes the conditional and
unconditional predictions: ε̂ = ε_u + g·(ε_c − ε_u).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

T_DEFAULT = 1000


class SamplingCancelled(Exception):
    """Raised by ddim_sample when its should_stop() says so."""


@dataclass(frozen=True)
class NoiseSchedule:
    """ᾱ_t for t = 0..T-1 (float64)."""

    alphas_cumprod: np.ndarray

    @classmethod
    def cosine(cls, T: int = T_DEFAULT, s: float = 0.008) -> "NoiseSchedule":
        steps = np.arange(T + 1, dtype=np.float64) / T
        f = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = np.clip(1 - f[1:] / f[:-1], 0.0, 0.999)  # clipped so the last steps stay invertible
        return cls(np.cumprod(1.0 - betas))

    @property
    def T(self) -> int:
        return len(self.alphas_cumprod)

    def abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """ᾱ_t gathered for a batch of timesteps, shaped to broadcast against `like` (B, ...)."""
        a = torch.as_tensor(self.alphas_cumprod, dtype=torch.float64)[t.long().cpu()]
        return a.to(device=like.device, dtype=like.dtype).view(-1, *([1] * (like.ndim - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 - ᾱ_t)·ε."""
        a = self.abar(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """`steps` timesteps from T-1 down to 0, evenly spaced ("trailing": the first is pure noise)."""
    if steps < 1:
        raise ValueError("steps must be at least 1")
    steps = min(steps, T)
    ts = np.round(np.linspace(T - 1, 0, steps)).astype(int).tolist()
    return ts


@dataclass
class DDIMStep:
    """One sampler step: `x` is x_{t_prev}, `x0` the model's current estimate of the clean sample."""

    index: int  # 1-based
    total: int
    t: int
    x: torch.Tensor
    x0: torch.Tensor


def ddim_iter(model_fn: Callable, x_T: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
              prediction: str = "eps", clip: float | None = None, eta: float = 0.0,
              generator: torch.Generator | None = None) -> Iterator[DDIMStep]:
    """DDIM from x_T: yields a DDIMStep after every step; the last step's x is the sample.

    model_fn(x_t, t) -> ε (prediction="eps") or x_0 (prediction="x0"), t a (B,) long tensor.
    clip: clamp the x_0 estimate to [-clip, clip] (images live in [-1, 1]).
    eta > 0 adds fresh noise each step (drawn from `generator`, on the CPU).
    """
    if prediction not in ("eps", "x0"):
        raise ValueError(f"prediction must be 'eps' or 'x0', not {prediction!r}")
    ts = ddim_timesteps(schedule.T, steps)
    x = x_T
    B = x.shape[0]
    for i, t in enumerate(ts):
        t_batch = torch.full((B,), t, dtype=torch.long, device=x.device)
        a = schedule.abar(t_batch, x)
        out = model_fn(x, t_batch)
        if prediction == "eps":
            eps = out
            x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        else:
            x0 = out
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
        if prediction == "x0" or clip is not None:  # ε consistent with the (clipped) x_0
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        if i + 1 < len(ts):
            a_prev = schedule.abar(torch.full_like(t_batch, ts[i + 1]), x)
        else:
            a_prev = torch.ones_like(a)
        sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).clamp_min(0).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev - sigma ** 2).clamp_min(0).sqrt() * eps
        if eta > 0 and i + 1 < len(ts):
            x = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        yield DDIMStep(i + 1, len(ts), t, x, x0)


def ddim_sample(model_fn: Callable, x_T: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
                callback: Callable[[DDIMStep], None] | None = None, preview_every: int = 5,
                should_stop: Callable[[], bool] | None = None, **kwargs) -> torch.Tensor:
    """Run ddim_iter to the end. callback(step) every `preview_every` steps and at the last;
    should_stop() is checked before every step and raises SamplingCancelled when true."""
    x = x_T
    for step in ddim_iter(model_fn, x_T, schedule, steps, **kwargs):
        x = step.x
        if callback is not None and (step.index % max(1, preview_every) == 0 or step.index == step.total):
            callback(step)
        if should_stop is not None and step.index < step.total and should_stop():
            raise SamplingCancelled(f"stopped after step {step.index} of {step.total}")
    return x


def guided(model: Callable, cond: torch.Tensor, guidance: float, uncond: torch.Tensor | None = None) -> Callable:
    """Classifier-free guidance around model(x, t, cond, keep) (keep: (B,) bool, False = the
    null condition). Guidance 1 is the conditional model alone (no unconditional pass).

    uncond: a condition for the "unconditional" branch instead of the null one, e.g. the
    image embedding of a negative prompt: the sample is pushed away from it.
    """
    def fn(x, t):
        B = x.shape[0]
        keep = torch.ones(B, dtype=torch.bool, device=x.device)
        if guidance == 1.0:
            return model(x, t, cond, keep)
        other, other_keep = (cond, ~keep) if uncond is None else (uncond, keep)
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, other]),
                     torch.cat([keep, other_keep]))  # 2B: conditional, then unconditional
        c, u = both[:B], both[B:]
        return u + guidance * (c - u)
    return fn


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between a and b (last dim), exact at t = 0 and t = 1.

    Falls back to linear interpolation when a and b are (nearly) parallel.
    """
    a64, b64 = a.double(), b.double()
    na, nb = a64.norm(dim=-1, keepdim=True), b64.norm(dim=-1, keepdim=True)
    cos = ((a64 / na.clamp_min(1e-12)) * (b64 / nb.clamp_min(1e-12))).sum(-1, keepdim=True).clamp(-1, 1)
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    t = float(t)
    parallel = so.abs() < 1e-6
    safe = torch.where(parallel, torch.ones_like(so), so)
    wa = torch.where(parallel, torch.full_like(so, 1 - t), torch.sin((1 - t) * omega) / safe)
    wb = torch.where(parallel, torch.full_like(so, t), torch.sin(t * omega) / safe)
    return (wa * a64 + wb * b64).to(a.dtype)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (B,) timesteps -> (B, dim), as in the Transformer / DDPM."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]  # B x half
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb
