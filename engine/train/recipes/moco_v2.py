"""MoCo v2 on Fashion-MNIST or image folders: a queue of K keys, a momentum key encoder, InfoNCE.

The step is the notes' pseudo-code (see engine.train.moco): two augmented views from the
step's seeded generator, q from the query encoder, k from the key encoder (shuffled, for the
split-BN "Shuffling BN"), loss = CE([l_pos, l_neg] / T, 0). After the optimizer update:
the momentum update of f_k, then the batch's keys replace the oldest N in the queue.

The queue and the key encoder are part of the training state, so a resumed run continues
with the same dictionary. The published model (model.safetensors) is the query backbone.

Monitors: instance-discrimination accuracy (the positive ranked first among 1 + K), the
mean positive and negative similarities and their histograms, the queue fill, and at each
evaluation the kNN accuracy of the backbone's features (engine.train.ssl).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.data.loader import step_generator
from engine.errors import TrainingError
from engine.train.ssl import SSLConfig, SSLRecipe


@dataclass
class MoCoV2Config(SSLConfig):
    epochs: int = 2  # Fashion-MNIST: 936 steps, 10 minutes on one (shared) CPU thread
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    K: int = 4096  # queue size: negatives per query
    m: float = 0.99  # key encoder momentum
    T: float = 0.1  # softmax temperature
    dim: int = 128  # output of the projection head
    bn_splits: int = 8  # resnet: BN sub-batches (the one-device stand-in for per-GPU BN)
    shuffle_keys: bool = True  # shuffle keys across BN sub-batches

    def validate(self) -> None:
        super().validate()
        if self.K < 1:
            raise TrainingError("K (the queue size) must be at least 1")
        if not 0.0 <= self.m < 1.0:
            raise TrainingError("m (the momentum) must be in [0, 1)")
        if self.T <= 0:
            raise TrainingError("T (the temperature) must be positive")
        if self.backbone == "resnet" and self.bn_splits > 1 and self.batch_size % self.bn_splits:
            raise TrainingError(f"batch_size {self.batch_size} must be a multiple of bn_splits {self.bn_splits}")


class MoCoV2Recipe(SSLRecipe):
    name = "moco_v2"
    Config = MoCoV2Config
    family_title = "MoCo v2"

    def build(self) -> None:
        from engine.models.backbones import build_backbone
        from engine.train.moco import MoCo

        cfg = self.config
        self.build_data()
        self.backbone_cfg = self.backbone_config()
        backbone = build_backbone(self.backbone_cfg, bn_splits=cfg.bn_splits)
        self.moco = MoCo(backbone, dim=cfg.dim, K=cfg.K, m=cfg.m, T=cfg.T,
                         shuffle_keys=cfg.shuffle_keys).to(self.device)
        self.backbone = self.moco.encoder_q.backbone
        self._last = None
        self.score_random_init()

    def modules(self) -> dict:
        # "model" is published; "moco" carries the projection head, f_k and the queue buffers.
        return {"model": self.backbone, "moco": self.moco}

    def parameters(self):
        return self.moco.encoder_q.parameters()  # f_k is updated by momentum, never by the optimizer

    def training_step(self, batch, step: int):
        g = step_generator(self.config.seed, step)
        x_q, x_k = self.views(batch, g)
        loss, logits, l_pos, l_neg, k = self.moco(x_q, x_k, generator=g)
        self._keys = k
        self._last = (l_pos.detach(), l_neg.detach())
        acc = (logits.argmax(1) == 0).float().mean()
        return loss, {"acc": float(acc), "pos_sim": float(l_pos.detach().mean()), "neg_sim": float(l_neg.detach().mean()),
                      "queue_fill": self.moco.queue_fill()}

    def after_step(self, step: int) -> None:
        from engine.train.distributed import all_gather_concat

        self.moco._momentum_update_key_encoder()
        # Under torchrun each rank holds its slice of the batch: the queue gets every rank's keys.
        self.moco._dequeue_and_enqueue(all_gather_concat(self._keys))
        self._keys = None

    def live_view(self, step: int) -> dict | None:
        if self._last is None:
            return None
        l_pos, l_neg = self._last
        return {"similarities": {"step": step, "positive": self.histogram(l_pos), "negative": self.histogram(l_neg),
                                 "queue_fill": self.moco.queue_fill()}}
