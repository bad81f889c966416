"""Engine jobs of the MAE panel.

    engine.submit("mae", {"path": "shirt.png", "model_id": "fmnist-mae-tiny", "mask_ratio": 0.75,
                          "seed": 0, "mode": "random"})            -> MAEResult
    engine.submit("mae_samples", {})                                -> [(png path, caption)]
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

from engine.data.samples import fashion_mnist_samples
from engine.domain_check import DomainWarning, image_warning
from engine.errors import ModelError
from engine.jobs import Progress
from engine.mae import DEFAULT_MAE
from engine.mae.masks import MODES, MaskError
from engine.mae.views import MAEViews

#: The MAE that works offline: trained by this project's own recipe on Fashion-MNIST.
#: Test-set indices of the Fashion-MNIST samples offered in the panel: the first image of each class.
SAMPLE_COUNT = 10
OUT_OF_DOMAIN_VERDICT = "lower, but on a picture outside the model's domain"


@dataclass(frozen=True)
class MAEResult:
    path: str
    model_id: str
    mode: str
    seed: int
    requested_ratio: float
    views: MAEViews
    seconds: float  # decode + forward + views
    load_seconds: float = 0.0  # model load, when this request had to load it
    domain_warning: DomainWarning | None = None  # the image lies outside what the model knows


def mae_job(ctx, path: str, model_id: str = DEFAULT_MAE, mask_ratio: float = 0.75, seed: int = 0,
            mode: str = "random", painted=None):
    """Mask, encode, decode one image and return its five views and the token order.

    painted: for mode "painted", one bool per patch (row-major), True = visible.
    """
    import torch

    from engine.catalogue.load import entry_of_family, timed_load
    from engine.images import open_image
    from engine.mae.views import compute_views
    from engine.preprocess import to_input

    if mode not in MODES:
        raise MaskError(f"unknown mask mode {mode!r}; choose one of {', '.join(MODES)}")
    yield Progress(None, "reconstructing")
    t0 = time.perf_counter()
    entry = entry_of_family(model_id, "mae", "a masked autoencoder")
    pp = entry.preprocess
    img = open_image(path, draft=(pp.resize, pp.resize))  # bad files fail before any model load
    model, load_seconds = timed_load(ctx, model_id)
    yield None  # a cancel point between the load and the forward pass
    x = torch.from_numpy(to_input(img, pp)).unsqueeze(0)  # (1, C, S, S), normalised
    c = x.shape[1]
    if c != model.config.in_chans or x.shape[-1] != model.config.img_size:
        raise ModelError(f"{entry.name}: its preprocessing gives {c} × {x.shape[-1]} px input, "
                         f"the model expects {model.config.in_chans} × {model.config.img_size} px")
    mean = torch.tensor(pp.mean[:c]).view(1, c, 1, 1)
    std = torch.tensor(pp.std[:c]).view(1, c, 1, 1)
    img01 = (x * std + mean).clamp(0, 1).to(ctx.device)  # (1, C, S, S) on 0..1: what the model sees
    views = compute_views(model, img01, pp.mean[:c], pp.std[:c], mode, float(mask_ratio), int(seed), painted)
    warning = image_warning(entry, img)
    if warning is not None and views.verdict == "better":
        # beating a baseline on a picture the model cannot know says nothing about the model
        views = replace(views, verdict=OUT_OF_DOMAIN_VERDICT)
    return MAEResult(path=str(path), model_id=model_id, mode=mode, seed=int(seed),
                     requested_ratio=float(mask_ratio), views=views,
                     seconds=time.perf_counter() - t0 - load_seconds, load_seconds=load_seconds,
                     domain_warning=warning)


def mae_samples_job(ctx, count: int = SAMPLE_COUNT):
    return fashion_mnist_samples(count)


def sample_index(path: str) -> int | None:
    """The test-set index of a sample written by fashion_mnist_samples, else None."""
    import re
    from pathlib import Path

    m = re.fullmatch(r"test-(\d{5})\.png", Path(path).name)
    return int(m.group(1)) if m and Path(path).parent.name == "fashion-mnist" else None
