"""Supervised classification: a small ViT learns labelled images (Fashion-MNIST or class folders).

Light augmentation (horizontal flips; optionally a random crop from a zero-padded image), cross-entropy,
and at each evaluation the held-out accuracy, per-class accuracy and confusion matrix.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data import fashion_mnist
from engine.data.loader import EpochOrder, step_generator
from engine.train.classify_eval import classification_metrics, classify_in_chunks
from engine.train.data_prep import (FASHION_MNIST_NAMES, LabelledImages, channel_stats, decode_with_progress,
                                     held_out_split, labels_reference, slug, to_nchw)
from engine.errors import TrainingError
from engine.train.loop import Recipe, TrainConfig
from engine.models.vit import PRESETS, ViTConfig, vit_config

@dataclass
class SupervisedConfig(TrainConfig):
    lr: float = 2e-3  # measured on Fashion-MNIST: small ViTs learn faster than at 1e-3
    model: str = "tiny"  # a ViT preset: tiny | small
    patch_size: int = 0  # 0: chosen for the image size (7 for 28 px)
    embed_dim: int = 0  # 0: the preset's
    depth: int = 0
    num_heads: int = 0
    mlp_ratio: float = 0.0
    drop_path_rate: float = 0.0
    global_pool: str = ""  # "": the preset's; "token" ([CLS]) or "avg" (mean of the patch tokens)
    label_smoothing: float = 0.0
    # Random crop from an image padded by this many pixels (0: off). Off by default: in a
    # 10-epoch run it slowed learning more than it helped; worth 2 in longer runs.
    crop_padding: int = 0
    flip: bool = True  # random horizontal flips
    image_size: int = 0  # folders: the side images are resized to (0: 32); Fashion-MNIST is 28
    grayscale: bool = False  # folders: train on one channel
    test_fraction: float = 0.2  # folders: share of each class held out for evaluation
    train_limit: int = 0  # use only the first N training images (0: all); for quick runs
    test_limit: int = 0  # evaluate on the first N test images (0: all)
    eval_batch_size: int = 1000

    def validate(self) -> None:
        super().validate()
        if self.model not in PRESETS:
            raise TrainingError(f"unknown model {self.model!r}; choose one of {', '.join(PRESETS)}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise TrainingError("test_fraction must be in [0, 1)")


class SupervisedRecipe(LabelledImages, Recipe):
    name = "supervised"
    Config = SupervisedConfig

    # ---------------------------------------------------------------- data
    def prepare(self):
        cfg = self.config
        if self.dataset.lower() in FASHION_MNIST_NAMES:
            train = yield from self.read_labelled_fashion_mnist()
            self.labels_name = fashion_mnist.LABELS
            self.dataset_info = {"name": "fashion-mnist", "source": train.source}
            self.skipped: list = []
        else:
            yield from self._prepare_folder(Path(self.dataset))
        self.apply_limits()
        self.train_x = np.ascontiguousarray(to_nchw(self.train_x))  # (N, C, H, W)
        self.test_x = np.ascontiguousarray(to_nchw(self.test_x))
        self.order = EpochOrder(len(self.train_y), cfg.batch_size, cfg.seed)
        self.dataset_info.update(train_size=int(len(self.train_y)), test_size=int(len(self.test_y)),
                                 classes=list(self.classes), image_size=int(self.train_x.shape[-1]),
                                 channels=int(self.train_x.shape[1]), mean=list(self.mean), std=list(self.std),
                                 skipped=[list(s) for s in self.skipped[:100]], skipped_count=len(self.skipped))

    def _prepare_folder(self, root: Path):
        from engine.data.folders import scan_class_folders

        cfg = self.config
        if not root.exists():
            raise TrainingError(f"dataset {self.dataset!r} is neither a dataset Patchwork knows "
                                f"({', '.join(FASHION_MNIST_NAMES[:1])}) nor an existing folder")
        scan = scan_class_folders(root)
        data = yield from decode_with_progress(scan, cfg.image_size or 32, cfg.grayscale)
        train_mask, test_mask = held_out_split(data.labels, len(scan.classes), cfg.test_fraction, cfg.seed)
        self.classes = data.classes
        self.train_x, self.train_y = data.images[train_mask], data.labels[train_mask]
        self.test_x, self.test_y = data.images[test_mask], data.labels[test_mask]
        pixels = self.train_x.reshape(len(self.train_x), -1, 1 if cfg.grayscale else 3) / 255.0
        self.mean, self.std = channel_stats(pixels, axis=(0, 1))
        self.labels_name = None  # written into the run folder by catalogue()
        self.skipped = data.skipped
        self.dataset_info = {"name": root.name, "source": str(root.resolve()), "kind": "class-folders"}

    def batch(self, idx, epoch: int):
        return self._x[idx], self._y[idx]

    # ---------------------------------------------------------------- model
    def model_config(self) -> ViTConfig:
        cfg = self.config
        channels, size = self.train_x.shape[1], self.train_x.shape[-1]
        return vit_config(cfg.model, img_size=int(size), in_chans=int(channels), num_classes=len(self.classes),
                          patch_size=cfg.patch_size or None, embed_dim=cfg.embed_dim or None,
                          depth=cfg.depth or None, num_heads=cfg.num_heads or None,
                          mlp_ratio=cfg.mlp_ratio or None, drop_path_rate=cfg.drop_path_rate,
                          global_pool=cfg.global_pool or None)

    def build(self) -> None:
        import torch

        from engine.models.vit import build_vit

        self.vit_config = self.model_config()
        self.model = build_vit(self.vit_config).to(self.device)
        # The data lives on the device: Fashion-MNIST is 55 MB of uint8, one copy per run.
        self._x = torch.from_numpy(self.train_x).to(self.device)
        self._y = torch.from_numpy(self.train_y).to(self.device)
        self._test_x = torch.from_numpy(self.test_x).to(self.device)
        self._test_y = torch.from_numpy(self.test_y).to(self.device)
        self._mean = torch.tensor(self.mean, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(self.std, device=self.device).view(1, -1, 1, 1)

    def modules(self) -> dict:
        return {"model": self.model}

    def normalise(self, x_uint8):
        import torch

        x = (x_uint8.float() / 255.0 - self._mean) / self._std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def augment(self, x, step: int):
        """Random crop of the zero-padded image and horizontal flip, fixed by (seed, step)."""
        import torch
        import torch.nn.functional as F

        cfg = self.config
        g = step_generator(cfg.seed, step)
        B, C, H, W = x.shape
        pad = cfg.crop_padding
        if pad > 0:
            offsets = torch.randint(0, 2 * pad + 1, (2, B), generator=g).to(x.device)
            padded = F.pad(x, (pad, pad, pad, pad))  # B x C x (H+2p) x (W+2p)
            rows = offsets[0][:, None] + torch.arange(H, device=x.device)  # B x H
            cols = offsets[1][:, None] + torch.arange(W, device=x.device)  # B x W
            b = torch.arange(B, device=x.device)[:, None, None]
            x = padded.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]]  # B x H x W x C
            x = x.permute(0, 3, 1, 2)
        if cfg.flip:
            flip = (torch.rand(B, generator=g) < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x

    def training_step(self, batch, step: int):
        import torch.nn.functional as F

        x, y = batch
        x = self.normalise(self.augment(x, step))
        logits = self.model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.config.label_smoothing)
        acc = (logits.argmax(-1) == y).float().mean()
        return loss, {"acc": float(acc)}

    def evaluate(self):
        """Generator over the held-out set in chunks; returns accuracy, per-class, confusion."""
        confusion, loss_sum = yield from classify_in_chunks(
            lambda x: self.model(self.normalise(x)), self._test_x, self._test_y, len(self.classes),
            self.config.eval_batch_size, self.autocast)
        return classification_metrics(confusion, self.classes, loss=loss_sum / max(1, len(self._test_y)))

    # ---------------------------------------------------------------- description
    def describe(self) -> dict:
        return {"dataset": self.dataset_info, "model_config": self.vit_config.to_dict(),
                "classes": list(self.classes)}

    def catalogue(self, run_name: str, run_dir) -> dict:
        labels = labels_reference(self.labels_name, self.classes, run_dir)
        vc = self.vit_config
        grayscale = vc.in_chans == 1
        return {
            "id": f"run-{slug(run_name)}",
            "name": f"ViT-{self.config.model} on {self.dataset_info['name']} ({run_name})",
            "family": "classifier", "panels": ["classify", "attention"],
            "description": (f"A {vc.depth}-block ViT ({vc.embed_dim}-d, {vc.num_heads} heads, "
                            f"{vc.patch_size}-px patches) trained here on {self.dataset_info['name']}."),
            "licence": "user", "builder": "vit", "labels": labels, "arch": "vit",
            "preprocess": {"input_size": vc.img_size, "resize": vc.img_size, "mean": list(self.mean),
                           "std": list(self.std), "interpolation": "bilinear", "grayscale": grayscale},
        }
