"""How well an MAE fills in what it cannot see, against baselines that see the same patches.

All errors are mean squared errors on the 0..1 pixel scale, over the *hidden* patches only
(the patches the loss counts), per image. Baselines:

* mean of visible patches: every hidden patch is predicted as the average visible patch;
* nearby visible patches: every hidden patch is the Gaussian-weighted (σ = 1.5 patches)
  average of the visible patches, a stronger, local guess.
"""
from __future__ import annotations


def hidden_patch_errors(model, imgs01, noise, mask_ratio: float, mean, std) -> dict:
    """imgs01: (N, C, H, W) floats in 0..1; noise: (N, L); mean, std: (C,) normalisation.

    Returns {"mae": (N,), "mean_visible": (N,), "nearby_visible": (N,)} tensors: the
    hidden-patch MSE of the model's reconstruction (clipped to 0..1, as displayed) and of the
    two baselines.
    """
    import torch

    c = imgs01.shape[1]
    m = torch.as_tensor(mean, dtype=imgs01.dtype, device=imgs01.device).view(1, c, 1, 1)
    s = torch.as_tensor(std, dtype=imgs01.dtype, device=imgs01.device).view(1, c, 1, 1)
    x = (imgs01 - m) / s  # (N, C, H, W), what the model was trained on
    with torch.no_grad():
        _, pred, mask, _, _ = model(x, mask_ratio, noise=noise.to(x.device))
        recon = (model.reconstruct(pred, x, mask) * s + m).clamp(0, 1)  # (N, C, H, W) on 0..1
        target = model.patchify(imgs01)  # (N, L, p·p·C)
        hidden = mask  # (N, L), 1 = hidden
        visible = 1.0 - mask
        n_hidden = hidden.sum(dim=1).clamp_min(1)  # (N,)

        def hidden_mse(guess):  # (N, L, p·p·C) -> (N,)
            per_patch = ((guess - target) ** 2).mean(dim=-1)  # (N, L)
            return (per_patch * hidden).sum(dim=1) / n_hidden

        mean_patch = (target * visible.unsqueeze(-1)).sum(1) / visible.sum(1, keepdim=True)  # (N, p·p·C)
        h, w = model.grid_size(imgs01)
        rows = torch.arange(h * w, device=x.device) // w
        cols = torch.arange(h * w, device=x.device) % w
        d2 = ((rows[:, None] - rows[None, :]) ** 2 + (cols[:, None] - cols[None, :]) ** 2).float()  # (L, L)
        weights = torch.exp(-d2 / (2 * 1.5**2))[None] * visible[:, None, :]  # (N, L, L)
        weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-30)
        nearby = weights @ target  # (N, L, p·p·C): each patch from the visible ones around it
        return {"mae": hidden_mse(model.patchify(recon)),
                "mean_visible": hidden_mse(mean_patch.unsqueeze(1).expand_as(target)),
                "nearby_visible": hidden_mse(nearby)}


#: Below this relative difference two hidden-patch errors are "about the same", whatever the bootstrap says.
REL_NOISE = 0.05
BOOTSTRAP_DRAWS = 1000


def compare(model_err, baseline_err, seed: int = 0) -> str:
    """"better", "worse" or "about the same": the model's per-hidden-patch errors against a baseline's
    on the same patches. A difference counts only when it is at least REL_NOISE of the baseline's
    error and the 95 % interval of a paired bootstrap over the patches excludes zero."""
    import numpy as np

    e, b = np.asarray(model_err, dtype=np.float64), np.asarray(baseline_err, dtype=np.float64)
    if e.size == 0:
        return "about the same"
    diff = e - b  # (n,), paired per patch
    if abs(diff.mean()) < REL_NOISE * max(b.mean(), 1e-12):
        return "about the same"
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(BOOTSTRAP_DRAWS, diff.size))].mean(1)  # (draws,)
    lo, hi = np.quantile(means, [0.025, 0.975])
    if lo <= 0.0 <= hi:
        return "about the same"
    return "better" if diff.mean() < 0 else "worse"


def evaluate(model, images_uint8, mean, std, mask_ratio: float = 0.75, seed: int = 0, batch_size: int = 500):
    """A generator over (N, C, H, W) uint8 images in chunks (yields None between chunks, so a
    job can stop); returns {"masked_mse", "baseline_mean_visible_mse", "baseline_nearby_visible_mse",
    "images", "mask_ratio"}, means over the images. Image i's mask depends only on (seed, i)."""
    import torch

    from engine.mae.masks import mask_noise

    device = next(model.parameters()).device
    n = len(images_uint8)
    length = model.num_patches
    noise, _ = mask_noise("random", (1, length), mask_ratio, seed, batch=n)  # (n, L), fixed per image
    sums = {"mae": 0.0, "mean_visible": 0.0, "nearby_visible": 0.0}
    for start in range(0, n, batch_size):
        chunk = torch.as_tensor(images_uint8[start:start + batch_size]).to(device).float() / 255.0
        errs = hidden_patch_errors(model, chunk, noise[start:start + batch_size], mask_ratio, mean, std)
        for k in sums:
            sums[k] += float(errs[k].sum())
        yield None
    return {"masked_mse": sums["mae"] / max(1, n), "baseline_mean_visible_mse": sums["mean_visible"] / max(1, n),
            "baseline_nearby_visible_mse": sums["nearby_visible"] / max(1, n), "images": n,
            "mask_ratio": mask_ratio}


def run(gen):
    """Drive a generator such as evaluate() to its return value (outside a job)."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.mae.quality [--model ID] [--images N]`: the card's quality numbers."""
    import argparse
    import json

    import numpy as np

    from engine import catalogue
    from engine.catalogue.load import build_model
    from engine.data import fashion_mnist
    from engine.mae import DEFAULT_MAE

    parser = argparse.ArgumentParser(description="Hidden-patch MSE of an MAE on Fashion-MNIST test images "
                                                 "against the visible-patch baselines.")
    parser.add_argument("--model", default=DEFAULT_MAE)
    parser.add_argument("--images", type=int, default=10_000, help="the first N test images")
    parser.add_argument("--mask-ratio", type=float, default=0.75)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    entry = catalogue.get(args.model)
    model = build_model(entry)
    images = fashion_mnist.load_fashion_mnist("test").images[:args.images, None]  # (N, 1, 28, 28)
    out = run(evaluate(model, np.ascontiguousarray(images), entry.preprocess.mean[:1], entry.preprocess.std[:1],
                       args.mask_ratio, args.seed))
    print(json.dumps({"model": args.model, "seed": args.seed, **out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
