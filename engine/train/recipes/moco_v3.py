"""MoCo v3 (Chen, Xie, He 2021): a ViT, no queue, a predictor, a symmetric loss.

Both views go through the query encoder (backbone + 3-layer projector) and the predictor;
the momentum encoder (backbone + projector, no predictor) makes the keys. The negatives are
the other keys of the batch:

    loss = ctr(q1, k2) + ctr(q2, k1),   ctr(q, k) = CE(q·kᵀ / T, arange N) · 2T

The momentum rises from m to 1 along a half cosine over the run, and the patch embedding is
frozen at its random initialisation (the paper's fix for ViT training instability).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.data.loader import step_generator
from engine.errors import TrainingError
from engine.train.ssl import SSLConfig, SSLRecipe


@dataclass
class MoCoV3Config(SSLConfig):
    backbone: str = "vit"
    epochs: int = 3
    batch_size: int = 128
    lr: float = 1.5e-3
    weight_decay: float = 0.1  # the paper's AdamW setting for ViT
    m: float = 0.99  # starting momentum; rises to 1 (cosine)
    T: float = 0.2  # the paper's temperature for ViT
    dim: int = 128  # output of projector and predictor (paper: 256)
    mlp_dim: int = 512  # hidden width of the heads (paper: 4096)
    freeze_patch_embed: bool = True  # a random, fixed patch projection (ViT only)

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.m < 1.0:
            raise TrainingError("m (the momentum) must be in [0, 1)")
        if self.T <= 0:
            raise TrainingError("T (the temperature) must be positive")


class MoCoV3Recipe(SSLRecipe):
    name = "moco_v3"
    Config = MoCoV3Config
    family_title = "MoCo v3"

    def build(self) -> None:
        from engine.models.backbones import build_backbone
        from engine.train.moco import MoCoV3

        cfg = self.config
        self.build_data()
        self.backbone_cfg = self.backbone_config()
        backbone = build_backbone(self.backbone_cfg)
        if cfg.freeze_patch_embed and hasattr(backbone, "patch_embed"):
            for p in backbone.patch_embed.parameters():
                p.requires_grad = False
        self.moco = MoCoV3(backbone, dim=cfg.dim, mlp_dim=cfg.mlp_dim, T=cfg.T).to(self.device)
        self.backbone = self.moco.encoder_q.backbone
        self._last = None
        self.momentum = cfg.m
        self.score_random_init()

    def modules(self) -> dict:
        return {"model": self.backbone, "moco": self.moco}

    def parameters(self):
        # the query encoder and the predictor; the momentum encoder has no gradients
        yield from self.moco.encoder_q.parameters()
        yield from self.moco.predictor.parameters()

    def training_step(self, batch, step: int):
        import torch

        from engine.train import distributed

        x1, x2 = self.views(batch, step_generator(self.config.seed, step))
        offset = distributed.row_offset(len(x1))
        if distributed.current() is None:
            loss, logits = self.moco(x1, x2)
        else:  # every rank's keys are negatives, as in MoCo v3's concat_all_gather
            loss, logits = self.moco(x1, x2, distributed.all_gather_concat, offset)
        with torch.no_grad():
            logits = logits.detach()
            n, cols = logits.shape
            rows = torch.arange(n, device=logits.device)
            positive = torch.zeros(n, cols, dtype=torch.bool, device=logits.device)
            positive[rows, offset + rows] = True  # (n, B) under torchrun: this rank's block
            diag = logits[positive]
            off = logits[~positive]
            acc = (logits.argmax(1) == offset + rows).float().mean()
        self._last = (diag.detach(), off.detach())
        return loss, {"acc": float(acc), "pos_sim": float(diag.mean()), "neg_sim": float(off.mean()),
                      "momentum": self.momentum}

    def after_step(self, step: int) -> None:
        from engine.models.momentum import cosine_momentum

        self.momentum = cosine_momentum(step, self.total_steps(), self.config.m)
        self.moco._update_momentum_encoder(self.momentum)

    def live_view(self, step: int) -> dict | None:
        if self._last is None:
            return None
        pos, neg = self._last
        return {"similarities": {"step": step, "positive": self.histogram(pos), "negative": self.histogram(neg)}}
