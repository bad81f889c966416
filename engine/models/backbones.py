"""Backbones for self-supervised recipes: a small ResNet for small images and the tiny ViT.

A backbone maps (N, C, H, W) images to (N, D) features and says D in `num_features`.

The ResNet uses SplitBatchNorm while training (as the official MoCo CIFAR-10 demo does):
each of `bn_splits` interleaved sub-batches gets its own batch statistics, which on one
device stands in for the paper's per-GPU BN with shuffled keys ("Shuffling BN"): keys are
shuffled before the key encoder, so a query and its positive key never share statistics
and the model cannot cheat through them. In eval mode it is an ordinary BatchNorm, with
the same state-dict keys, so a trained backbone loads into plain nn.BatchNorm2d.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.errors import ModelError
from engine.models.registry import register_builder


class SplitBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are computed per interleaved sub-batch."""

    def __init__(self, num_features: int, num_splits: int = 1, **kw):
        super().__init__(num_features, **kw)
        self.num_splits = num_splits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, C, H, W = x.shape
        s = self.num_splits
        if not self.training or s <= 1 or N % s:
            return super().forward(x)
        # Sample n goes to split n % s: view (N/s, C·s, H, W) puts the splits side by side as channels.
        mean_split = self.running_mean.repeat(s)  # (C·s,)
        var_split = self.running_var.repeat(s)
        out = F.batch_norm(x.reshape(-1, C * s, H, W), mean_split, var_split,
                           self.weight.repeat(s), self.bias.repeat(s), True, self.momentum, self.eps)
        with torch.no_grad():
            self.running_mean.copy_(mean_split.view(s, C).mean(0))
            self.running_var.copy_(var_split.view(s, C).mean(0))
            self.num_batches_tracked.add_(1)
        return out.view(N, C, H, W)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, norm):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = norm(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), norm(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """A CIFAR-style ResNet: 3×3 stem, three stages (width, 2·width, 4·width; strides 1, 2, 2),
    global average pool. One block a stage: 77k parameters and 64-d features at width 16,
    307k and 128-d at width 32."""

    def __init__(self, in_chans: int = 1, width: int = 32, blocks: int = 1, bn_splits: int = 1):
        super().__init__()

        def norm(c):
            return SplitBatchNorm(c, bn_splits)

        self.stem = nn.Sequential(nn.Conv2d(in_chans, width, 3, 1, 1, bias=False), norm(width), nn.ReLU(inplace=True))
        layers, c = [], width
        for i, mult in enumerate((1, 2, 4)):
            for b in range(blocks):
                layers.append(BasicBlock(c, width * mult, 2 if (i > 0 and b == 0) else 1, norm))
                c = width * mult
        self.layers = nn.Sequential(*layers)
        self.num_features = c

    def forward(self, x):
        x = self.layers(self.stem(x))  # (N, 4·width, H/4, W/4)
        return x.mean(dim=(2, 3))  # (N, 4·width)


@dataclass(frozen=True)
class BackboneConfig:
    """What rebuilds a trained backbone: kind ("resnet" | "vit") and its sizes."""

    kind: str = "resnet"
    img_size: int = 28
    in_chans: int = 1
    width: int = 32  # resnet
    blocks: int = 1  # resnet: blocks per stage
    vit: dict | None = None  # vit: an engine.models.vit.ViTConfig as a dict (num_classes 0)

    def to_dict(self) -> dict:
        return asdict(self)


def build_backbone(cfg: BackboneConfig, bn_splits: int = 1) -> nn.Module:
    if cfg.kind == "resnet":
        return SmallResNet(cfg.in_chans, cfg.width, cfg.blocks, bn_splits)
    if cfg.kind == "vit":
        from engine.models.vit import ViTConfig, build_vit

        model = build_vit(ViTConfig.from_dict({**(cfg.vit or {}), "num_classes": 0}))
        return model  # timm's VisionTransformer: num_features set, head is Identity
    raise ModelError(f"unknown backbone kind {cfg.kind!r}; choose resnet or vit")


def load_backbone(weights) -> nn.Module:
    """The backbone described by the card beside `weights` (a run folder or an export), eval mode."""
    from engine.models.builders import load_from_card

    return load_from_card(weights, lambda d: BackboneConfig(**d), build_backbone, "backbone section", "backbone")


@register_builder("ssl_backbone")
def build_from_run(entry, path):
    """Catalogue builder for SSL backbones trained here (family "ssl-backbone"), and (as
    build_from_resources) for one exported to resources/checkpoints/."""
    return load_backbone(path)


build_from_resources = build_from_run
