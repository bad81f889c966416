"""Linear probe and fine-tuning: how good are a backbone's features for a labelled task?

Both start from any catalogue model with a feature extractor (engine.train.features): the
built-in Fashion-MNIST ViT, SSL backbones trained here, timm ViTs once downloaded,
EfficientNet-Lite0, MAE and CLIP models. Data: Fashion-MNIST or a class folder, of which
`label_fraction` of the training labels are used (class-balanced, fixed by the seed), so
"1% vs 100% of the labels" is one setting.

* linear_probe: the backbone is frozen; its features of every image are computed once
  (while the data loads, cancellable) and only a linear layer (after a BatchNorm without
  affine parameters, as in MAE's probe protocol) is trained on them. Fast even for big
  backbones, since each image goes through the backbone once.
* finetune: backbone and a new linear head train together (the backbone at
  `backbone_lr_scale` of the head's rate), with random horizontal flips.

Images are adapted on the device to the backbone's input convention: channels (gray <->
RGB), size (bilinear) and its own normalisation. The card's "probe" section (backbone,
label fraction, mode) lets the Train panel and `python main.py train ...` put a probe and a
fine-tune of the same backbone side by side.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data import fashion_mnist
from engine.data.loader import EpochOrder, step_generator
from engine.jobs import Progress
from engine.train.classify_eval import classification_metrics, classify_in_chunks
from engine.train.data_prep import (FASHION_MNIST_NAMES, LabelledImages, decode_with_progress, held_out_split,
                                     labels_reference, slug, to_nchw)
from engine.errors import TrainingError
from engine.train.loop import Recipe, TrainConfig


@dataclass
class ProbeConfig(TrainConfig):
    backbone: str = "fmnist-vit-tiny"  # a catalogue id (python main.py models)
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-2
    weight_decay: float = 0.0
    label_fraction: float = 1.0  # share of the training labels used, class-balanced
    head_bn: bool = True  # BatchNorm (no affine) before the linear layer
    image_size: int = 0  # folders: decode size (0: the backbone's input size)
    test_fraction: float = 0.2  # folders: share of each class held out
    train_limit: int = 0  # only the first N training images (0: all), before label_fraction
    test_limit: int = 0  # evaluate on the first N test images (0: all)
    eval_batch_size: int = 500
    flip: bool = True  # fine-tune only: random horizontal flips
    backbone_lr_scale: float = 1.0  # fine-tune only: the backbone's rate relative to the head's

    def validate(self) -> None:
        super().validate()
        if not 0.0 < self.label_fraction <= 1.0:
            raise TrainingError("label_fraction must be in (0, 1]")
        if not 0.0 <= self.test_fraction < 1.0:
            raise TrainingError("test_fraction must be in [0, 1)")
        if self.backbone_lr_scale < 0:
            raise TrainingError("backbone_lr_scale must be at least 0")


@dataclass
class FinetuneConfig(ProbeConfig):
    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    head_bn: bool = False
    backbone_lr_scale: float = 0.3


def labelled_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of a class-balanced `fraction` of the samples (at least one per class), sorted."""
    if fraction >= 1.0:
        return np.arange(len(labels))
    rng = np.random.default_rng([int(seed), 0x1AB])
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.append(rng.permutation(idx)[:max(1, int(round(fraction * len(idx))))])
    return np.sort(np.concatenate(keep))


class LinearProbeRecipe(LabelledImages, Recipe):
    name = "linear_probe"
    Config = ProbeConfig
    mode = "linear_probe"

    # ---------------------------------------------------------------- data
    def prepare(self):
        from engine import catalogue
        from engine.errors import ModelError
        from engine.train.features import has_feature_extractor

        cfg = self.config
        try:
            self.entry = catalogue.get(cfg.backbone)
        except ModelError as exc:
            raise TrainingError(str(exc)) from None
        if not has_feature_extractor(self.entry):
            raise TrainingError(f"{self.entry.name} has no feature extractor for probing or fine-tuning")
        pp = self.entry.preprocess
        self.in_chans = 1 if pp.grayscale else 3
        self.input_size = int(pp.input_size)
        if self.dataset.lower() in FASHION_MNIST_NAMES:
            train = yield from self.read_labelled_fashion_mnist(channel_axis=True)
            self.labels_name = fashion_mnist.LABELS
            self.dataset_info = {"name": "fashion-mnist", "source": train.source}
        else:
            yield from self._prepare_folder(Path(self.dataset))
        self.apply_limits()
        keep = labelled_subset(self.train_y, cfg.label_fraction, cfg.seed)
        self.train_x, self.train_y = np.ascontiguousarray(self.train_x[keep]), self.train_y[keep]
        self.test_x = np.ascontiguousarray(self.test_x)
        self.order = EpochOrder(len(self.train_y), cfg.batch_size, cfg.seed)
        self.dataset_info.update(train_size=int(len(self.train_y)), test_size=int(len(self.test_y)),
                                 label_fraction=cfg.label_fraction, classes=list(self.classes),
                                 image_size=int(self.train_x.shape[-1]), channels=int(self.train_x.shape[1]))
        yield Progress(None, f"loading the backbone {self.entry.name}")
        from engine.catalogue.load import build_model
        from engine.train.features import feature_extractor

        try:
            self.extractor = feature_extractor(build_model(self.entry))
        except ModelError as exc:
            raise TrainingError(f"cannot use {self.entry.name} as a backbone: {exc}") from None
        yield from self.prepare_features()

    def _prepare_folder(self, root: Path):
        from engine.data.folders import scan_class_folders

        cfg = self.config
        if not root.is_dir():
            raise TrainingError(f"dataset {self.dataset!r} is neither a dataset Patchwork knows "
                                f"({FASHION_MNIST_NAMES[0]}) nor an existing folder")
        scan = scan_class_folders(root)
        data = yield from decode_with_progress(scan, cfg.image_size or self.input_size, self.in_chans == 1)
        images = to_nchw(data.images)  # (N, C, S, S)
        train, test = held_out_split(data.labels, len(scan.classes), cfg.test_fraction, cfg.seed)
        self.classes = scan.classes
        self.train_x, self.train_y = images[train], data.labels[train]
        self.test_x, self.test_y = images[test], data.labels[test]
        self.labels_name = None
        self.dataset_info = {"name": root.name, "source": str(root.resolve()), "kind": "class-folders",
                             "skipped_count": len(data.skipped)}

    def prepare_features(self):
        """The probe's one pass of the frozen backbone over its training and test images."""
        import torch

        self.extractor = self.extractor.to(self.device).eval()
        self._prep_constants()
        feats = {}
        for split, x in (("train", self.train_x), ("test", self.test_x)):
            out = []
            for start in range(0, len(x), self.config.eval_batch_size):
                chunk = torch.from_numpy(x[start:start + self.config.eval_batch_size]).to(self.device)
                with torch.inference_mode():
                    out.append(self.extractor(self.to_input(chunk)).float().cpu())
                done = min(len(x), start + self.config.eval_batch_size)
                yield Progress(done / len(x), f"backbone features ({split}) {done}/{len(x)}", done, len(x))
            feats[split] = torch.cat(out).numpy()
        self.train_f, self.test_f = feats["train"], feats["test"]

    def _prep_constants(self) -> None:
        import torch

        pp = self.entry.preprocess
        self._mean = torch.tensor(pp.mean[:self.in_chans], device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(pp.std[:self.in_chans], device=self.device).view(1, -1, 1, 1)

    def to_input(self, x_uint8):
        """uint8 (N, C, h, w) -> the backbone's input: channels, size, normalisation."""
        import torch
        import torch.nn.functional as F

        x = x_uint8.float() / 255.0
        if x.shape[1] == 1 and self.in_chans == 3:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] == 3 and self.in_chans == 1:
            x = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        x = (x - self._mean) / self._std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def batch(self, idx, epoch: int):
        return self._train_inputs[idx], self._y[idx]

    # ---------------------------------------------------------------- model
    def build(self) -> None:
        import torch

        from engine.train.features import ProbeClassifier

        self.model = ProbeClassifier(self.extractor, len(self.classes), self.config.head_bn).to(self.device)
        for p in self.model.extractor.parameters():
            p.requires_grad = False
        self._y = torch.from_numpy(self.train_y).to(self.device)
        self._test_y = torch.from_numpy(self.test_y).to(self.device)
        self._train_inputs = torch.from_numpy(self.train_f).to(self.device)
        self._test_inputs = torch.from_numpy(self.test_f).to(self.device)

    def modules(self) -> dict:
        return {"model": self.model}

    def parameters(self):
        return self.model.head.parameters()

    def logits(self, inputs):
        return self.model.head(inputs)

    def training_step(self, batch, step: int):
        import torch.nn.functional as F

        self.model.extractor.eval()  # frozen: never in training mode
        x, y = batch
        logits = self.logits(x).float()
        loss = F.cross_entropy(logits, y)
        return loss, {"acc": float((logits.argmax(-1) == y).float().mean())}

    def evaluate(self):
        confusion, loss_sum = yield from classify_in_chunks(
            self.logits, self._test_inputs, self._test_y, len(self.classes), self.config.eval_batch_size,
            self.autocast)
        return classification_metrics(confusion, self.classes, loss=loss_sum / max(1, len(self._test_y)))

    # ---------------------------------------------------------------- description
    def describe(self) -> dict:
        cfg = self.config
        return {"dataset": self.dataset_info, "classes": list(self.classes),
                "probe": {"mode": self.mode, "backbone": cfg.backbone, "backbone_name": self.entry.name,
                          "backbone_sha256": self.entry.sha256, "label_fraction": cfg.label_fraction,
                          "num_classes": len(self.classes), "head_bn": cfg.head_bn,
                          "feature_dim": self.extractor.num_features, "input_size": self.input_size}}

    def catalogue(self, run_name: str, run_dir) -> dict:
        from dataclasses import asdict

        labels = labels_reference(self.labels_name, self.classes, run_dir)
        what = "linear probe" if self.mode == "linear_probe" else "fine-tuned"
        pct = f"{100 * self.config.label_fraction:g}%"
        return {
            "id": f"run-{slug(run_name)}",
            "name": f"{self.entry.name} · {what} on {self.dataset_info['name']} ({pct} labels)",
            "family": "classifier", "panels": ["classify"],
            "description": f"{self.entry.name} with a linear head, {what} here on {self.dataset_info['name']} "
                           f"with {pct} of the training labels.",
            "licence": self.entry.licence, "builder": "probe",
            "labels": labels, "arch": self.mode, "preprocess": asdict(self.entry.preprocess),
        }


class FinetuneRecipe(LinearProbeRecipe):
    name = "finetune"
    Config = FinetuneConfig
    mode = "finetune"

    def prepare_features(self):
        """Fine-tuning runs the backbone every step: the images stay uint8 on the device."""
        return iter(())

    def build(self) -> None:
        import torch

        from engine.train.features import ProbeClassifier

        self.extractor = self.extractor.to(self.device)
        self._prep_constants()
        self.model = ProbeClassifier(self.extractor, len(self.classes), self.config.head_bn).to(self.device)
        for p in self.model.parameters():
            p.requires_grad = True
        self._y = torch.from_numpy(self.train_y).to(self.device)
        self._test_y = torch.from_numpy(self.test_y).to(self.device)
        self._train_inputs = torch.from_numpy(self.train_x).to(self.device)
        self._test_inputs = torch.from_numpy(self.test_x).to(self.device)

    def parameters(self):
        return self.model.parameters()

    def param_groups(self) -> list[dict]:
        """The loop's groups, split into backbone and head; the backbone's carry lr_scale."""
        scale = self.config.backbone_lr_scale
        head = {id(p) for p in self.model.head.parameters()}
        groups = []
        for g in super().param_groups():
            hp = [p for p in g["params"] if id(p) in head]
            bp = [p for p in g["params"] if id(p) not in head]
            if bp:
                groups.append({**g, "params": bp, "lr_scale": scale})
            if hp:
                groups.append({**g, "params": hp, "lr_scale": 1.0})
        return groups

    def logits(self, inputs):
        return self.model(self.to_input(inputs))

    def training_step(self, batch, step: int):
        import torch
        import torch.nn.functional as F

        x, y = batch
        if self.config.flip:
            g = step_generator(self.config.seed, step)
            flip = (torch.rand(x.shape[0], generator=g) < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        logits = self.logits(x).float()
        loss = F.cross_entropy(logits, y)
        return loss, {"acc": float((logits.argmax(-1) == y).float().mean())}
