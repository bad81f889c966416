"""InstDisc on Fashion-MNIST or image folders: a memory bank of one 128-d vector per image.

The step (see engine.train.memory_bank): one augmented view of each image from the step's
seeded generator, q from the encoder, the image's own bank entry as the positive and K bank
entries sampled uniformly (same generator) as the negatives, loss = CE([l_pos, l_neg] / T, 0).
After the optimizer update the batch's features are mixed into their bank entries with
momentum m. The bank (and when each entry was written) is training state: a resumed run
continues with it.

Monitors: acc (the positive ranked first among 1 + K), the mean positive and negative
similarities and their histograms, bank_fill (entries written at least once), bank_staleness
(mean steps since the sampled negatives were written), and the kNN accuracy of the backbone.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.data.loader import step_generator
from engine.errors import TrainingError
from engine.train.ssl import SSLConfig, SSLRecipe


@dataclass
class InstDiscConfig(SSLConfig):
    epochs: int = 2
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    K: int = 4096  # negatives sampled from the memory bank per step
    m: float = 0.5  # bank momentum: entry = m · entry + (1 - m) · new feature (Wu et al.: 0.5)
    T: float = 0.1  # softmax temperature
    dim: int = 128  # the bank's feature size

    def validate(self) -> None:
        super().validate()
        if self.K < 1:
            raise TrainingError("K (the negatives per step) must be at least 1")
        if not 0.0 <= self.m < 1.0:
            raise TrainingError("m (the bank momentum) must be in [0, 1)")
        if self.T <= 0:
            raise TrainingError("T (the temperature) must be positive")


class InstDiscRecipe(SSLRecipe):
    name = "instdisc"
    Config = InstDiscConfig
    family_title = "InstDisc"
    dataset_kinds = ("fashion-mnist", "classes", "unlabelled")

    def build(self) -> None:
        from engine.models.backbones import build_backbone
        from engine.train.memory_bank import InstDisc

        cfg = self.config
        self.build_data()
        self.backbone_cfg = self.backbone_config()
        self.instdisc = InstDisc(build_backbone(self.backbone_cfg), n=len(self.train_x), dim=cfg.dim, K=cfg.K,
                                 m=cfg.m, T=cfg.T).to(self.device)
        self.backbone = self.instdisc.encoder.backbone
        self._last = None
        self.score_random_init()

    def modules(self) -> dict:
        # "model" is published; "instdisc" carries the head and the memory bank buffers.
        return {"model": self.backbone, "instdisc": self.instdisc}

    def parameters(self):
        return self.instdisc.encoder.parameters()

    def batch(self, idx, epoch: int):
        """(indices, images): the bank needs to know which images the batch holds."""
        import torch

        return torch.from_numpy(idx).to(self.device), self._x[idx]

    def training_step(self, batch, step: int):
        from engine.data.augment import random_view

        idx, images = batch
        g = step_generator(self.config.seed, step)
        x = self.normalise(random_view(images, self.view_spec, g))
        loss, logits, l_pos, l_neg, q, neg_idx = self.instdisc(x, idx, generator=g)
        memory = self.instdisc.memory
        self._pending = (idx, q.detach())
        self._last = (l_pos.detach(), l_neg.detach())
        acc = (logits.argmax(1) == 0).float().mean()
        return loss, {"acc": float(acc), "pos_sim": float(l_pos.detach().mean()),
                      "neg_sim": float(l_neg.detach().mean()), "bank_fill": memory.fill(),
                      "bank_staleness": memory.staleness(neg_idx, step)}

    def after_step(self, step: int) -> None:
        from engine.train.distributed import all_gather_concat

        idx, q = self._pending
        # Under torchrun every rank writes every rank's features, so the banks stay identical.
        self.instdisc.memory.update(all_gather_concat(idx), all_gather_concat(q), step)
        self._pending = None
