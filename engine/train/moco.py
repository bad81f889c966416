"""Momentum Contrast, v2 (He et al. 2020; Chen et al. 2020) and v3 (Chen, Xie, He 2021).

v2, the notes' pseudo-code step by step (symbols as in the paper: q, k, K, m, T):

    f_k.params = f_q.params                          # init key encoder as a copy
    x_q, x_k = aug(x), aug(x)                        # two random augmentations
    q = f_q(x_q)                                     # N x C
    k = f_k(x_k).detach()                            # N x C, no gradient
    l_pos = bmm(q.view(N,1,C), k.view(N,C,1))        # N x 1
    l_neg = mm(q.view(N,C), queue.view(C,K))         # N x K
    logits = cat([l_pos, l_neg], dim=1)              # N x (1+K)
    labels = zeros(N)                                # the positive is column 0
    loss = CrossEntropyLoss(logits / T, labels)
    loss.backward(); update(f_q.params)              # the optimizer: query encoder only
    f_k.params = m*f_k.params + (1-m)*f_q.params     # momentum update
    enqueue(queue, k); dequeue(queue)                # keep K keys, drop the oldest N

The recipe (engine.train.recipes.moco_v2) calls `forward` for the loss and, after the
optimizer step, `_momentum_update_key_encoder` and `_dequeue_and_enqueue`.

v3 drops the queue: the negatives are the other keys of the batch, a predictor head sits
on the query side, and the loss is symmetrised, each half scaled by 2T as in the paper's
code: ctr(q1, k2) + ctr(q2, k1), ctr(q, k) = CE(q·kᵀ / T, arange N) · 2T.

No `.cuda()` and no distributed calls here: the modules follow their inputs' device.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.models.momentum import frozen_copy, momentum_update


# ---------------------------------------------------------------------------- losses
def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, T: float):
    """MoCo v2's loss. q, k: (N, C) L2-normalised; queue: (C, K) normalised keys.

    Returns (loss, logits (N, 1+K) already divided by T, l_pos (N, 1), l_neg (N, K)).
    """
    N, C = q.shape
    l_pos = torch.bmm(q.view(N, 1, C), k.view(N, C, 1)).view(N, 1)  # N x 1
    l_neg = torch.mm(q.view(N, C), queue.view(C, -1))  # N x K
    logits = torch.cat([l_pos, l_neg], dim=1) / T  # N x (1+K)
    labels = torch.zeros(N, dtype=torch.long, device=q.device)  # the positive is column 0
    return F.cross_entropy(logits, labels), logits, l_pos, l_neg


def contrastive_loss_v3(q: torch.Tensor, k: torch.Tensor, T: float, gather=None, offset: int = 0):
    """MoCo v3's in-batch loss for one direction: CE(q·kᵀ/T, arange N) · 2T.

    q, k: (N, C), normalised here. Returns (loss, logits (N, N) before the 1/T scale).
    Under torchrun the keys of every rank are the negatives, as in MoCo v3's code: `gather`
    (engine.train.distributed.all_gather_concat; keys carry no gradient) brings them, and
    `offset` is where this rank's rows start, so logits are (n, B).
    """
    q = F.normalize(q, dim=1)
    k = F.normalize(k, dim=1)
    if gather is not None:
        k = gather(k)
    logits = q @ k.t()  # N x N: the diagonal holds the positives
    labels = offset + torch.arange(q.shape[0], device=q.device)
    return F.cross_entropy(logits / T, labels) * (2 * T), logits


# ---------------------------------------------------------------------------- heads
def mlp_v2(dim_in: int, dim_out: int) -> nn.Sequential:
    """MoCo v2's projection head: fc - ReLU - fc."""
    return nn.Sequential(nn.Linear(dim_in, dim_in), nn.ReLU(inplace=True), nn.Linear(dim_in, dim_out))


def mlp_v3(num_layers: int, dim_in: int, dim_hidden: int, dim_out: int, last_bn: bool = True) -> nn.Sequential:
    """MoCo v3's heads: Linear(no bias) - BN - ReLU per hidden layer; a final BN without affine
    on the projector (last_bn), none on the predictor."""
    layers: list[nn.Module] = []
    for i in range(num_layers):
        d1 = dim_in if i == 0 else dim_hidden
        d2 = dim_out if i == num_layers - 1 else dim_hidden
        layers.append(nn.Linear(d1, d2, bias=False))
        if i < num_layers - 1:
            layers += [nn.BatchNorm1d(d2), nn.ReLU(inplace=True)]
        elif last_bn:
            layers.append(nn.BatchNorm1d(d2, affine=False))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """backbone then head: f_q or f_k."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x):
        return self.head(self.backbone(x))


# ---------------------------------------------------------------------------- v2
class MoCo(nn.Module):
    """MoCo v2: query encoder, momentum key encoder, a queue of K keys."""

    def __init__(self, backbone: nn.Module, dim: int = 128, K: int = 4096, m: float = 0.99, T: float = 0.1,
                 shuffle_keys: bool = True):
        super().__init__()
        self.K, self.m, self.T = K, m, T
        self.shuffle_keys = shuffle_keys
        self.encoder_q = Encoder(backbone, mlp_v2(backbone.num_features, dim))
        self.encoder_k = frozen_copy(self.encoder_q)
        # The queue starts as random unit vectors (as in the paper's code); queue_filled counts
        # the real keys written so far, for the "queue fill" monitor.
        self.register_buffer("queue", F.normalize(torch.randn(dim, K), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
        self.register_buffer("queue_filled", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _momentum_update_key_encoder(self) -> None:
        momentum_update(self.encoder_k, self.encoder_q, self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: torch.Tensor) -> None:
        """Write the N keys over the oldest N (a FIFO ring; wraps around the end)."""
        keys = keys.detach().to(self.queue.dtype)
        N = keys.shape[0]
        if N >= self.K:  # a batch larger than the queue: keep its newest K keys
            keys, N = keys[-self.K:], self.K
        ptr = int(self.queue_ptr)
        idx = (ptr + torch.arange(N, device=self.queue.device)) % self.K
        self.queue[:, idx] = keys.t()  # C x N
        self.queue_ptr[0] = (ptr + N) % self.K
        self.queue_filled[0] = min(self.K, int(self.queue_filled) + N)

    def queue_fill(self) -> float:
        return int(self.queue_filled) / self.K

    def keys(self, im_k: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """k = f_k(x_k), normalised, no gradient. Keys go through the key encoder in a shuffled
        order and are un-shuffled after, so BN statistics (split per sub-batch) cannot pair a
        query with its positive."""
        with torch.no_grad():
            if self.shuffle_keys:
                idx_shuffle = torch.randperm(im_k.shape[0], generator=generator).to(im_k.device)
                idx_unshuffle = torch.argsort(idx_shuffle)
                k = self.encoder_k(im_k[idx_shuffle])[idx_unshuffle]
            else:
                k = self.encoder_k(im_k)
            return F.normalize(k.float(), dim=1)

    def forward(self, im_q: torch.Tensor, im_k: torch.Tensor, generator: torch.Generator | None = None):
        """-> (loss, logits (N, 1+K) / T, l_pos (N, 1), l_neg (N, K), k (N, C))."""
        q = F.normalize(self.encoder_q(im_q).float(), dim=1)  # N x C
        k = self.keys(im_k, generator)  # N x C
        loss, logits, l_pos, l_neg = info_nce(q, k, self.queue.clone().detach(), self.T)
        return loss, logits, l_pos, l_neg, k


# ---------------------------------------------------------------------------- v3
class MoCoV3(nn.Module):
    """MoCo v3: base encoder + projector (momentum copy for keys), predictor on queries."""

    def __init__(self, backbone: nn.Module, dim: int = 128, mlp_dim: int = 512, T: float = 0.2,
                 proj_layers: int = 3, pred_layers: int = 2):
        super().__init__()
        self.T = T
        self.encoder_q = Encoder(backbone, mlp_v3(proj_layers, backbone.num_features, mlp_dim, dim))
        self.predictor = mlp_v3(pred_layers, dim, mlp_dim, dim, last_bn=False)
        self.encoder_k = frozen_copy(self.encoder_q)

    @torch.no_grad()
    def _update_momentum_encoder(self, m: float) -> None:
        momentum_update(self.encoder_k, self.encoder_q, m)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, gather=None, offset: int = 0):
        """-> (loss, logits (N, N) of q1·k2ᵀ, for monitoring). gather/offset: contrastive_loss_v3."""
        q1 = self.predictor(self.encoder_q(x1)).float()
        q2 = self.predictor(self.encoder_q(x2)).float()
        with torch.no_grad():
            k1 = self.encoder_k(x1).float()
            k2 = self.encoder_k(x2).float()
        loss1, logits = contrastive_loss_v3(q1, k2, self.T, gather, offset)
        loss2, _ = contrastive_loss_v3(q2, k1, self.T, gather, offset)
        return loss1 + loss2, logits

