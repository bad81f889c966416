"""SimCLR on Fashion-MNIST or image folders: the batch is the dictionary (NT-Xent over 2N views).

The step (see engine.train.nt_xent): two augmented views from the step's seeded generator
(the same views as MoCo's), both through one encoder and projection head with gradients,
loss = NT-Xent(z_1, z_2) / T, where each view's other view is its positive and the other
2N - 2 views its negatives. There is no momentum encoder and no queue: the number of
negatives is tied to the batch size.

Monitors: the positive ranked first among the 2N - 1 (acc), the mean positive and negative
similarities and their histograms, and at each evaluation the kNN accuracy of the backbone.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.data.loader import step_generator
from engine.errors import TrainingError
from engine.train.ssl import SSLConfig, SSLRecipe


@dataclass
class SimCLRConfig(SSLConfig):
    epochs: int = 2
    batch_size: int = 128  # the dictionary: 2 × batch_size - 2 negatives per view
    lr: float = 2e-3
    weight_decay: float = 5e-4
    T: float = 0.1  # softmax temperature (MoCo v2's here, so a comparison changes only the dictionary)
    dim: int = 128  # output of the projection head

    def validate(self) -> None:
        super().validate()
        if self.T <= 0:
            raise TrainingError("T (the temperature) must be positive")


class SimCLRRecipe(SSLRecipe):
    name = "simclr"
    Config = SimCLRConfig
    family_title = "SimCLR"
    dataset_kinds = ("fashion-mnist", "classes", "unlabelled")

    def build(self) -> None:
        from engine.models.backbones import build_backbone
        from engine.train.nt_xent import SimCLR

        cfg = self.config
        self.build_data()
        self.backbone_cfg = self.backbone_config()
        self.simclr = SimCLR(build_backbone(self.backbone_cfg), dim=cfg.dim, T=cfg.T).to(self.device)
        self.backbone = self.simclr.encoder.backbone
        self._last = None
        self.score_random_init()

    def modules(self) -> dict:
        # "model" is published; "simclr" carries the projection head.
        return {"model": self.backbone, "simclr": self.simclr}

    def parameters(self):
        return self.simclr.parameters()

    def training_step(self, batch, step: int):
        import torch

        from engine.train import distributed
        from engine.train.nt_xent import positives_negatives

        x1, x2 = self.views(batch, step_generator(self.config.seed, step))
        if distributed.current() is None:
            loss, sim, target = self.simclr(x1, x2)
        else:  # every rank's views are negatives, as in one process
            loss, sim, target = self.simclr(x1, x2, distributed.gather_with_grad, distributed.row_offset(len(x1)))
        with torch.no_grad():
            pos, neg, acc = positives_negatives(sim.detach(), target)
        self._last = (pos, neg)
        return loss, {"acc": float(acc), "pos_sim": float(pos.mean()), "neg_sim": float(neg.mean())}
