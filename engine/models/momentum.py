"""Momentum encoders, as MoCo, ALBEF and the decoder's EMA keep them: a frozen copy of a
module that follows the trained one slowly, key = m · key + (1 - m) · query."""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy of `module` (f_k initialised as f_q) that the optimizer never updates."""
    return copy.deepcopy(module).requires_grad_(False)


@torch.no_grad()
def momentum_update(key: nn.Module, query: nn.Module, m: float) -> None:
    """key.params = m · key.params + (1 - m) · query.params (buffers, e.g. BN statistics, are
    the key encoder's own, as in the official code)."""
    for p_k, p_q in zip(key.parameters(), query.parameters()):
        p_k.mul_(m).add_(p_q.detach(), alpha=1 - m)


def cosine_momentum(step: int, total: int, m_base: float) -> float:
    """MoCo v3's momentum schedule: from m_base up to 1 along a half cosine."""
    return 1.0 - 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(1, total))) * (1.0 - m_base)
