"""Instance discrimination with a memory bank (Wu et al. 2018, "InstDisc").

The dictionary is a bank of one L2-normalised 128-d vector per training image. A step
encodes one augmented view of each image; the image's own bank entry is the positive and K
entries drawn uniformly from the bank are the negatives. The bank is updated with the new
features after the step, so its entries come from many past encoder versions: the
inconsistency MoCo's momentum encoder removes. Step by step (as MoCo's paper describes it):

    q = normalize(f(aug(x)))                         # N x C, the batch's images idx
    k = bank[idx]                                    # N x C, positives, no gradient
    neg = bank[randint(len(bank), K)]                # K x C, uniform, the step's generator
    loss = info_nce(q, k, neg.T, T)                  # engine.train.moco.info_nce: CE([q·k, q·neg] / T, 0)
    loss.backward(); update(f.params)
    bank[idx] = normalize(m * bank[idx] + (1 - m) * q)   # m = 0.5 in Wu et al.
    written_at[idx] = step                           # for the staleness monitor

One set of K negatives serves the whole batch (like MoCo's queue; Wu et al. draw per image)
and a query's own entry may be among them, as in Wu et al.'s code. The head is Wu et al.'s
linear projection to 128-d. "Bank staleness" is the mean number of steps since the sampled
negatives were written (entries never written count from step 0).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.train.moco import Encoder, info_nce


class MemoryBank(nn.Module):
    """n normalised C-d entries (buffers, so checkpoints and resume carry them)."""

    def __init__(self, n: int, dim: int = 128, m: float = 0.5):
        super().__init__()
        self.m = m
        self.register_buffer("bank", F.normalize(torch.randn(n, dim), dim=1))  # n x C
        self.register_buffer("written_at", torch.zeros(n, dtype=torch.long))  # step of the last write, 0: never

    def sample(self, K: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """K indices, uniform with replacement (drawn on the CPU so the stream is device-independent)."""
        return torch.randint(len(self.bank), (K,), generator=generator).to(self.bank.device)

    @torch.no_grad()
    def update(self, idx: torch.Tensor, features: torch.Tensor, step: int) -> None:
        """bank[idx] = normalize(m · bank[idx] + (1 - m) · features); only those rows change."""
        mixed = self.m * self.bank[idx] + (1 - self.m) * features.detach().to(self.bank.dtype)
        self.bank[idx] = F.normalize(mixed, dim=1)
        self.written_at[idx] = step

    def staleness(self, idx: torch.Tensor, step: int) -> float:
        return float((step - self.written_at[idx]).float().mean())

    def fill(self) -> float:
        """The share of entries written at least once."""
        return float((self.written_at > 0).float().mean())


class InstDisc(nn.Module):
    """Encoder (backbone + linear head) and the memory bank of the n training images."""

    def __init__(self, backbone: nn.Module, n: int, dim: int = 128, K: int = 4096, m: float = 0.5, T: float = 0.1):
        super().__init__()
        self.K, self.T = K, T
        self.encoder = Encoder(backbone, nn.Linear(backbone.num_features, dim))
        self.memory = MemoryBank(n, dim, m)

    def forward(self, x: torch.Tensor, idx: torch.Tensor, generator: torch.Generator | None = None):
        """-> (loss, logits (N, 1+K) / T, l_pos (N, 1), l_neg (N, K), q (N, C), negative indices (K,))."""
        q = F.normalize(self.encoder(x).float(), dim=1)  # N x C
        neg_idx = self.memory.sample(self.K, generator)
        k = self.memory.bank[idx]  # N x C: each image's own entry
        negatives = self.memory.bank[neg_idx].t().contiguous()  # C x K
        loss, logits, l_pos, l_neg = info_nce(q, k, negatives, self.T)
        return loss, logits, l_pos, l_neg, q, neg_idx
