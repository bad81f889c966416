"""The five views of one masked reconstruction, as uint8 pictures plus the numbers behind them.

original · masked (hidden patches grey) · reconstruction (the decoder's prediction for every
patch) · reconstruction with the visible patches pasted back (the FAIR demo's last view) ·
per-patch error heat map (hidden patches coloured by their MSE; visible ones dimmed, since
the loss ignores them).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VIEW_NAMES = ("original", "masked", "reconstruction", "pasted", "error")
VIEW_TITLES = {"original": "original", "masked": "masked", "reconstruction": "reconstruction",
               "pasted": "reconstruction + visible", "error": "error per patch"}
MASK_GREY = 0.5  # what a hidden patch shows in the masked view

NORM_PIX_NOTE = ("norm-pix model: its predictions are per-patch normalised; each hidden patch is "
                 "un-normalised with the mean and variance of the visible patches around it, never with "
                 "its own hidden pixels (MAE-pytorch #40)")
PIXEL_NOTE = "pixel-loss model: the prediction is pixels (only the dataset's mean/std undone)"

# matplotlib's "inferno" at 0, 1/6, ..., 1 (sampled from its table), interpolated linearly
_INFERNO = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                     [245, 125, 21], [250, 193, 39], [252, 255, 164]], dtype=np.float64)


def heat_colours(values: np.ndarray) -> np.ndarray:
    """Values in 0..1 (any shape) -> (..., 3) uint8 colours of the inferno colour map."""
    v = np.clip(np.nan_to_num(values), 0.0, 1.0) * (len(_INFERNO) - 1)
    lo = np.floor(v).astype(int).clip(0, len(_INFERNO) - 2)
    t = (v - lo)[..., None]
    return np.round(_INFERNO[lo] * (1 - t) + _INFERNO[lo + 1] * t).astype(np.uint8)


def to_uint8(img01: np.ndarray) -> np.ndarray:
    """(C, H, W) floats in 0..1 -> (H, W, 3) uint8 (grey images repeated into RGB)."""
    a = np.clip(np.round(np.asarray(img01, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    a = a.transpose(1, 2, 0)  # (H, W, C)
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else np.ascontiguousarray(a)


@dataclass(frozen=True)
class MAEViews:
    """Everything the panel, the CLI and the training preview show. Plain numpy only."""

    original: np.ndarray  # (H, W, 3) uint8
    masked: np.ndarray
    reconstruction: np.ndarray
    pasted: np.ndarray
    error: np.ndarray  # heat map, (H, W, 3) uint8
    error_grid: np.ndarray  # (h, w) float32: per-patch MSE on the 0..1 scale, visible patches too
    hidden: np.ndarray  # (h, w) bool, True = hidden from the encoder
    ids_shuffle: np.ndarray  # (L,) int64: patch indices in shuffled order; the first len_keep are kept
    ids_restore: np.ndarray  # (L,) int64: position of each patch in the shuffled order (its inverse)
    len_keep: int
    patch_size: int
    grid: tuple[int, int]
    mask_ratio: float  # the ratio actually used (painted masks define their own)
    masked_mse: float | None  # mean over hidden patches; None when nothing is hidden
    visible_mse: float | None  # the same over visible patches (not trained on)
    baseline_mse: float | None  # every hidden patch predicted as the mean visible patch
    error_max: float  # the error of the heat map's brightest colour
    norm_pix: bool
    note: str  # how the prediction was un-normalised
    verdict: str = ""  # the model vs the baseline on the hidden patches: "better", "worse", "about the same"

    def view(self, name: str) -> np.ndarray:
        return getattr(self, name)

    def preview_dict(self) -> dict:
        """The four FAIR-demo views and the hidden-patch MSE, for live training previews."""
        return {"original": self.original, "masked": self.masked, "reconstruction": self.reconstruction,
                "pasted": self.pasted, "masked_mse": self.masked_mse, "len_keep": self.len_keep,
                "grid": list(self.grid)}


def compute_views(model, img01, mean, std, mode: str = "random", mask_ratio: float = 0.75, seed: int = 0,
                  painted=None) -> MAEViews:
    """img01: (1, C, H, W) tensor in 0..1 on the model's device; mean, std: the model's input
    normalisation (C values). Runs one masked forward pass and builds the views."""
    import torch

    from engine.mae.masks import mask_noise
    from engine.mae.quality import compare

    c = img01.shape[1]
    m = torch.as_tensor(tuple(mean)[:c], dtype=img01.dtype, device=img01.device).view(1, c, 1, 1)
    s = torch.as_tensor(tuple(std)[:c], dtype=img01.dtype, device=img01.device).view(1, c, 1, 1)
    x = (img01 - m) / s  # (1, C, H, W): the model's input
    grid = model.grid_size(x)
    p = model.patch_size
    noise, ratio = mask_noise(mode, grid, mask_ratio, seed, painted)
    with torch.no_grad():
        _, pred, mask, ids_shuffle, ids_restore = model(x, ratio, noise=noise)
        recon = (model.reconstruct(pred, x, mask) * s + m).clamp(0, 1)  # (1, C, H, W) on 0..1
        hidden_px = model.unpatchify(mask.unsqueeze(-1).expand(-1, -1, p * p * c), grid)  # (1, C, H, W), 1 = hidden
        masked = img01 * (1 - hidden_px) + MASK_GREY * hidden_px
        pasted = img01 * (1 - hidden_px) + recon * hidden_px
        target = model.patchify(img01)  # (1, L, p·p·C)
        err = ((model.patchify(recon) - target) ** 2).mean(-1)[0]  # (L,)
        vis = mask[0] < 0.5  # (L,)
        mean_patch = target[0][vis].mean(0)  # (p·p·C,): the mean visible patch
        base = ((mean_patch[None] - target[0]) ** 2).mean(-1)  # (L,)
    err_np = err.double().cpu().numpy()
    hidden = ~vis.cpu().numpy()
    len_keep = int(vis.sum())
    masked_mse = float(err_np[hidden].mean()) if hidden.any() else None
    visible_mse = float(err_np[~hidden].mean()) if (~hidden).any() else None
    base_np = base.double().cpu().numpy()
    baseline = float(base_np[hidden].mean()) if hidden.any() else None
    verdict = compare(err_np[hidden], base_np[hidden], seed) if hidden.any() else ""
    error_max = float(err_np[hidden].max()) if hidden.any() else float(err_np.max())
    error_max = max(error_max, 1e-6)
    original = to_uint8(img01[0].cpu().numpy())
    heat = _heat_map(err_np.reshape(grid), hidden.reshape(grid), error_max, original, p)
    return MAEViews(
        original=original, masked=to_uint8(masked[0].cpu().numpy()), reconstruction=to_uint8(recon[0].cpu().numpy()),
        pasted=to_uint8(pasted[0].cpu().numpy()), error=heat, error_grid=err_np.reshape(grid).astype(np.float32),
        hidden=hidden.reshape(grid), ids_shuffle=ids_shuffle[0].cpu().numpy().astype(np.int64),
        ids_restore=ids_restore[0].cpu().numpy().astype(np.int64), len_keep=len_keep, patch_size=p,
        grid=(int(grid[0]), int(grid[1])), mask_ratio=float(1 - len_keep / err_np.size), masked_mse=masked_mse,
        visible_mse=visible_mse, baseline_mse=baseline, error_max=error_max, norm_pix=bool(model.norm_pix_loss),
        note=NORM_PIX_NOTE if model.norm_pix_loss else PIXEL_NOTE, verdict=verdict)


def _heat_map(err: np.ndarray, hidden: np.ndarray, top: float, original: np.ndarray, p: int) -> np.ndarray:
    """(h, w) errors -> (H, W, 3): hidden patches in colour, visible ones as the dimmed photo."""
    colours = heat_colours(err / top)  # (h, w, 3)
    blocks = np.repeat(np.repeat(colours, p, axis=0), p, axis=1)  # (H, W, 3): one block per patch
    show = np.repeat(np.repeat(hidden, p, axis=0), p, axis=1)[..., None]  # (H, W, 1)
    dim = (original.astype(np.float64) * 0.35 + 140).astype(np.uint8)  # light grey: outside the colour scale
    return np.where(show, blocks, dim)


# ---------------------------------------------------------------------------- the headless picture
def side_by_side(views: MAEViews, min_side: int = 224, gap: int = 8) -> np.ndarray:
    """The five views in a row under their titles, small images enlarged (nearest) to `min_side`."""
    from PIL import Image, ImageDraw, ImageFont

    tiles = [Image.fromarray(views.view(n)) for n in VIEW_NAMES]
    side = tiles[0].width
    scale = max(1, -(-min_side // side))  # ceil: 28 px -> x8
    tiles = [t.resize((t.width * scale, t.height * scale), Image.Resampling.NEAREST) for t in tiles]
    w, h = tiles[0].size
    try:
        font = ImageFont.load_default(size=15)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        font = ImageFont.load_default()
    title_h = 22
    canvas = Image.new("RGB", (len(tiles) * w + (len(tiles) + 1) * gap, h + title_h + 2 * gap), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (name, tile) in enumerate(zip(VIEW_NAMES, tiles)):
        x = gap + i * (w + gap)
        canvas.paste(tile, (x, gap + title_h))
        draw.text((x, gap + 2), VIEW_TITLES[name], fill=(30, 30, 30), font=font)
    return np.asarray(canvas)
