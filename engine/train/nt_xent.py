"""SimCLR (Chen et al. 2020): the end-to-end dictionary. The batch is the dictionary.

Both views go through the same encoder and projection head, both updated by gradients, so
every key is as fresh as the query (consistent) but there are only as many negatives as
the batch holds, hence SimCLR's big batches. NT-Xent over the 2N views, step by step:

    z = normalize(g(f(cat([x_1, x_2]))))             # 2N x C
    sim = z @ z.T                                    # 2N x 2N cosine similarities
    sim[i, i] = -inf                                 # a view is not its own negative
    target[i] = (i + N) mod 2N                       # its other view is the positive
    loss = CrossEntropyLoss(sim / T, target)         # the other 2N - 2 views are negatives

The head is MoCo v2's fc - ReLU - fc (engine.train.moco.mlp_v2), which is SimCLR's.
Under torchrun the views of every rank are gathered (with their gradient), so the dictionary
is the whole global batch, as in one process. BN still normalises per rank (no SyncBN).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.train.moco import Encoder, mlp_v2


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, T: float, gather=None, offset: int = 0):
    """NT-Xent over the 2N views. z1, z2: (N, C), normalised here.

    Returns (loss, sim (2N, 2N) cosine similarities before masking and 1/T, target (2N,)).
    Under torchrun, `gather` (engine.train.distributed.gather_with_grad) and `offset` (where
    this rank's n rows start) score this rank's 2n views against all 2B: sim is then (2n, 2B).
    """
    N = z1.shape[0]
    if gather is None:
        z = F.normalize(torch.cat([z1, z2]), dim=1)  # 2N x C
        sim = z @ z.t()  # 2N x 2N
        self_mask = torch.eye(2 * N, dtype=torch.bool, device=z.device)
        logits = sim.masked_fill(self_mask, float("-inf")) / T
        target = (torch.arange(2 * N, device=z.device) + N) % (2 * N)  # view i pairs with view i ± N
        return F.cross_entropy(logits, target), sim, target
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    keys = torch.cat([gather(z1), gather(z2)])  # 2B x C: every rank's first views, then second
    B = keys.shape[0] // 2
    sim = torch.cat([z1, z2]) @ keys.t()  # 2n x 2B
    own = offset + torch.arange(N, device=z1.device)
    self_col = torch.cat([own, own + B])  # where each of this rank's views sits among the keys
    target = torch.cat([own + B, own])
    self_mask = torch.zeros_like(sim, dtype=torch.bool).scatter_(1, self_col[:, None], True)
    logits = sim.masked_fill(self_mask, float("-inf")) / T
    return F.cross_entropy(logits, target), sim, target


class SimCLR(nn.Module):
    """One encoder f with a projection head g; both views through it with gradients."""

    def __init__(self, backbone: nn.Module, dim: int = 128, T: float = 0.1):
        super().__init__()
        self.T = T
        self.encoder = Encoder(backbone, mlp_v2(backbone.num_features, dim))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, gather=None, offset: int = 0):
        """-> (loss, sim (2N, 2N), target (2N,)). The views go through as one 2N batch, so BN
        normalises over all of them (SimCLR's global BN). gather/offset: see nt_xent."""
        z = self.encoder(torch.cat([x1, x2])).float()
        z1, z2 = z.chunk(2)
        return nt_xent(z1, z2, self.T, gather, offset)


def positives_negatives(sim: torch.Tensor, target: torch.Tensor):
    """For the monitors: (positive similarities (2N,), negative similarities (2N·(2N-2),),
    accuracy: the share of views whose other view ranks first among the 2N - 1).
    sim may be a rank's (2n, 2B) rows: a view's own column is its positive's, half the keys away."""
    n2, cols = sim.shape
    rows = torch.arange(n2, device=sim.device)
    own = torch.zeros_like(sim, dtype=torch.bool)
    own[rows, (target + cols // 2) % cols] = True
    pos = sim[rows, target]
    neg_mask = ~own
    neg_mask[rows, target] = False
    acc = (sim.masked_fill(own, float("-inf")).argmax(1) == target)
    return pos, sim[neg_mask], acc.float().mean()
