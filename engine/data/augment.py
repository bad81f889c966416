"""Batched, seeded image augmentations for self-supervised recipes (MoCo's two views).

MoCo v2's recipe (He et al. / Chen et al. 2020): random resized crop, colour jitter with
probability 0.8, random grayscale 0.2, Gaussian blur 0.5, horizontal flip. Here it runs on
a whole uint8 batch on the training device (no per-image PIL work), and every random draw
comes from one torch.Generator fixed by (seed, step), so a resumed run draws the same views.

Small grayscale images (Fashion-MNIST, 28×28) get the same geometry with a gentler crop
(scale ≥ 0.3, so a 28-px crop still shows an object part), brightness/contrast jitter only
and no blur (a 2-px blur wipes out a 28-px image; SimCLR drops blur on CIFAR for the same
reason). Hue/saturation/grayscale only apply to RGB.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ViewSpec:
    """One random view: every probability and range of the augmentation."""

    crop_scale: tuple[float, float] = (0.2, 1.0)  # area fraction of the random resized crop
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect ratio range of the crop
    flip: float = 0.5  # probability of a horizontal flip
    jitter: float = 0.8  # probability of colour jitter
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4  # RGB only
    hue: float = 0.1  # RGB only, as a fraction of a full turn
    grayscale: float = 0.2  # RGB only: probability of dropping colour
    blur: float = 0.5  # probability of a Gaussian blur
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # at 224 px; scaled with the image size

    def to_dict(self) -> dict:
        return asdict(self)


def view_spec_for(image_size: int, channels: int, strength: float = 1.0) -> ViewSpec:
    """MoCo v2's augmentation for this image size and channel count; `strength` scales the jitter."""
    if channels == 1:
        return ViewSpec(crop_scale=(0.3, 1.0) if image_size < 64 else (0.2, 1.0), flip=0.5, jitter=0.8,
                        brightness=0.4 * strength, contrast=0.4 * strength, saturation=0.0, hue=0.0,
                        grayscale=0.0, blur=0.0 if image_size < 64 else 0.5)
    return ViewSpec(brightness=0.4 * strength, contrast=0.4 * strength, saturation=0.4 * strength,
                    hue=0.1 * strength, blur=0.0 if image_size < 64 else 0.5)


def _uniform(n: int, lo: float, hi: float, g):
    import torch

    return lo + (hi - lo) * torch.rand(n, generator=g)


def random_resized_crop(x, spec: ViewSpec, g):
    """(B, C, H, W) float -> the same shape: each image a random crop (and flip), resized back.

    The crop is an affine sampling grid: scale (w, h) and offset (cx, cy) in [-1, 1] coordinates,
    a negative w being a horizontal flip. One grid_sample call for the whole batch.
    """
    import torch
    import torch.nn.functional as F

    B = x.shape[0]
    area = _uniform(B, *spec.crop_scale, g)  # (B,)
    log_r = _uniform(B, math.log(spec.crop_ratio[0]), math.log(spec.crop_ratio[1]), g)
    ratio = torch.exp(log_r)
    w = torch.sqrt(area * ratio).clamp(max=1.0)  # crop width as a fraction of the image width
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (torch.rand(B, generator=g) * 2 - 1) * (1 - w)  # centre, keeping the crop inside
    cy = (torch.rand(B, generator=g) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(B, generator=g) < spec.flip, -1.0, 1.0)
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _gray(x):
    """(B, C, H, W) -> (B, 1, H, W) luminance (ITU-R 601 weights for RGB)."""
    if x.shape[1] == 1:
        return x
    r, g_, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return 0.299 * r + 0.587 * g_ + 0.114 * b


def color_jitter(x, spec: ViewSpec, g):
    """Brightness, contrast, then (RGB) saturation and hue, each image with its own factors,
    applied to a random `spec.jitter` share of the batch."""
    import torch

    B = x.shape[0]
    dev, dt = x.device, x.dtype

    def factors(amount):
        return _uniform(B, 1 - amount, 1 + amount, g).to(dev, dt).view(B, 1, 1, 1)

    apply = (torch.rand(B, generator=g) < spec.jitter).to(dev).view(B, 1, 1, 1)
    bright, contrast = factors(spec.brightness), factors(spec.contrast)
    sat = factors(spec.saturation)
    hue = (_uniform(B, -spec.hue, spec.hue, g) * 2 * math.pi).to(dev, dt).view(B, 1, 1)
    y = (x * bright).clamp(0, 1)
    mean = _gray(y).mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    y = ((y - mean) * contrast + mean).clamp(0, 1)
    if x.shape[1] == 3:
        gray = _gray(y)
        y = ((y - gray) * sat + gray).clamp(0, 1)
        y = _rotate_hue(y, hue).clamp(0, 1)
    return torch.where(apply, y, x)


def _rotate_hue(x, angle):
    """Rotate the chroma of (B, 3, H, W) RGB by `angle` (B, 1, 1) radians in YIQ space."""
    import torch

    yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                       device=x.device, dtype=x.dtype)
    rgb = torch.linalg.inv(yiq)
    B, C, H, W = x.shape
    q = torch.einsum("ij,bjhw->bihw", yiq, x)  # (B, 3, H, W) in YIQ
    cos, sin = torch.cos(angle), torch.sin(angle)  # (B, 1, 1)
    i, qq = q[:, 1], q[:, 2]  # (B, H, W)
    q = torch.stack([q[:, 0], cos * i - sin * qq, sin * i + cos * qq], dim=1)
    return torch.einsum("ij,bjhw->bihw", rgb, q)


def random_grayscale(x, spec: ViewSpec, g):
    import torch

    if x.shape[1] != 3 or spec.grayscale <= 0:
        return x
    pick = (torch.rand(x.shape[0], generator=g) < spec.grayscale).to(x.device).view(-1, 1, 1, 1)
    return torch.where(pick, _gray(x).expand_as(x), x)


def gaussian_blur(x, spec: ViewSpec, g):
    """Blur a random `spec.blur` share of the batch, sigma drawn per image (scaled to the size)."""
    import torch
    import torch.nn.functional as F

    B, C, H, W = x.shape
    if spec.blur <= 0:
        return x
    scale = H / 224
    sigma = _uniform(B, spec.blur_sigma[0] * scale, spec.blur_sigma[1] * scale, g).clamp(min=1e-3)
    pick = (torch.rand(B, generator=g) < spec.blur).to(x.device).view(B, 1, 1, 1)
    radius = max(1, int(math.ceil(3 * spec.blur_sigma[1] * scale)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)  # (K,)
    k = torch.exp(-(t[None] ** 2) / (2 * sigma.to(x.device, x.dtype)[:, None] ** 2))  # (B, K)
    k = k / k.sum(1, keepdim=True)
    k = k.repeat_interleave(C, 0)  # (B*C, K): one kernel per image and channel
    y = x.reshape(1, B * C, H, W)  # images and channels as groups of one conv
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), k[:, None, None, :], groups=B * C)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), k[:, None, :, None], groups=B * C)
    return torch.where(pick, y.reshape(B, C, H, W), x)


def random_view(x_uint8, spec: ViewSpec, g):
    """One augmented view of a uint8 (B, C, H, W) batch, as float in [0, 1]."""
    x = x_uint8.float() / 255.0
    x = random_resized_crop(x, spec, g)
    x = color_jitter(x, spec, g)
    x = random_grayscale(x, spec, g)
    return gaussian_blur(x, spec, g).clamp(0, 1)


def two_views(x_uint8, spec: ViewSpec, g):
    """(view 1, view 2) of the batch: MoCo's x_q and x_k. `g` is the step's generator
    (engine.data.loader.step_generator(seed, step)), so a resumed run draws the same views."""
    return random_view(x_uint8, spec, g), random_view(x_uint8, spec, g)


def to_uint8_images(x01):
    """(B, C, H, W) float in [0, 1] -> list of (H, W) or (H, W, 3) uint8 numpy arrays (for the GUI)."""
    import numpy as np

    arr = (x01.detach().float().clamp(0, 1) * 255).round().to("cpu").numpy().astype(np.uint8)
    return [a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0) for a in arr]
