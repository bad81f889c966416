"""Which patches the encoder sees: random, grid, block, or a mask the user painted.

Every mode ends in the same place: per-patch noise for ``MaskedAutoencoderViT.random_masking``,
whose argsort (``ids_shuffle``) puts the kept patches first. So the encoder input, the
shuffle/unshuffle and the token-order strip work the same way whatever chose the patches.
The same (mode, grid, ratio, seed) always gives the same mask.
"""
from __future__ import annotations

import numpy as np

from engine.errors import PatchworkError

MODES = ("random", "grid", "block", "painted")


class MaskError(PatchworkError):
    """A mask that cannot be used (wrong size, nothing visible, unknown mode)."""


def kept_count(num_patches: int, mask_ratio: float) -> int:
    """len_keep for a ratio (engine.models.mae.num_kept), as a MaskError for a bad ratio.

    Imported lazily: this module is read by the CLI parser and the GUI, which must not load torch.
    """
    from engine.models.mae import num_kept

    if not 0.0 <= mask_ratio < 1.0:
        raise MaskError(f"mask ratio must be in [0, 1), got {mask_ratio}")
    return num_kept(num_patches, mask_ratio)


# ---------------------------------------------------------------------------- grid: an ordered dither
def bayer(n: int) -> np.ndarray:
    """(n, n) Bayer threshold matrix, n a power of two: 0..n²-1, each prefix spread evenly.

    Its first quarter is every other row and column: the paper's "grid-wise sampling"
    (keep one of every four patches) at a 75% ratio; other ratios take a longer or shorter
    prefix of the same order, so the kept patches stay as evenly spaced as they can be.
    """
    m = np.zeros((1, 1), dtype=np.int64)
    while m.shape[0] < n:
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])  # (2k, 2k)
    return m


def grid_visible(grid: tuple[int, int], keep: int, seed: int) -> np.ndarray:
    """(h, w) bool, `keep` True: a regular lattice whose phase is chosen by `seed`."""
    h, w = grid
    n = 1 << max(1, (max(h, w) - 1).bit_length())  # power of two >= max(h, w)
    rng = np.random.default_rng([int(seed), 0x6121D])
    dy, dx = (int(v) for v in rng.integers(0, 2, size=2))  # which of the lattice's four phases
    order = np.roll(bayer(n), (dy, dx), axis=(0, 1))[:h, :w]  # (h, w) rank of each patch
    visible = np.zeros(h * w, dtype=bool)
    visible[np.argsort(order.reshape(-1), kind="stable")[:keep]] = True
    return visible.reshape(h, w)


# ---------------------------------------------------------------------------- block: BEiT's blockwise masking
def block_visible(grid: tuple[int, int], keep: int, seed: int, min_block: int = 4,
                  aspect: tuple[float, float] = (0.3, 1 / 0.3)) -> np.ndarray:
    """(h, w) bool, `keep` True: the hidden patches form random rectangles.

    BEiT's blockwise masking (Bao et al. 2021): add random rectangles (area at least
    `min_block` patches, aspect ratio in `aspect`) until the hidden count is reached; a
    remainder too small for a rectangle is taken from the hidden region's edge, so the
    count is exact and the hidden region stays in blocks.
    """
    h, w = grid
    target = h * w - keep  # patches to hide
    rng = np.random.default_rng([int(seed), 0xB10C])
    hidden = np.zeros((h, w), dtype=bool)
    log_aspect = np.log(aspect)
    for _ in range(200):  # bounded: every pass either adds patches or gives up below
        left = target - int(hidden.sum())
        if left < min_block:
            break
        added = False
        for _attempt in range(10):
            area = rng.uniform(min_block, left)
            ratio = np.exp(rng.uniform(*log_aspect))
            bh, bw = int(round(np.sqrt(area * ratio))), int(round(np.sqrt(area / ratio)))
            if not (1 <= bh <= h and 1 <= bw <= w):
                continue
            top, lft = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
            new = bh * bw - int(hidden[top:top + bh, lft:lft + bw].sum())
            if 0 < new <= left:
                hidden[top:top + bh, lft:lft + bw] = True
                added = True
                break
        if not added:
            break
    while int(hidden.sum()) < target:  # grow from the edge of what is hidden (or anywhere, at first)
        flat = hidden.reshape(-1)
        if flat.any():
            grown = hidden.copy()
            grown[1:] |= hidden[:-1]
            grown[:-1] |= hidden[1:]
            grown[:, 1:] |= hidden[:, :-1]
            grown[:, :-1] |= hidden[:, 1:]
            candidates = np.flatnonzero(grown.reshape(-1) & ~flat)
        else:
            candidates = np.arange(h * w)
        flat[rng.choice(candidates)] = True
    return ~hidden


# ---------------------------------------------------------------------------- all modes -> noise
def visible_patches(mode: str, grid: tuple[int, int], mask_ratio: float, seed: int,
                    painted=None) -> np.ndarray | None:
    """(h, w) bool of kept patches for grid, block and painted; None for random (the model draws it)."""
    h, w = grid
    if mode == "random":
        return None
    if mode == "painted":
        if painted is None:
            raise MaskError("painted mode needs a mask: paint the patches to hide over the image")
        vis = np.asarray(painted, dtype=bool)
        if vis.size != h * w:
            raise MaskError(f"the painted mask has {vis.size} patches but this model's grid is {h} × {w} = {h * w}")
        vis = vis.reshape(h, w)
        if not vis.any():
            raise MaskError("the painted mask hides every patch: leave at least one visible")
        return vis
    keep = kept_count(h * w, mask_ratio)
    if mode == "grid":
        return grid_visible(grid, keep, seed)
    if mode == "block":
        return block_visible(grid, keep, seed)
    raise MaskError(f"unknown mask mode {mode!r}; choose one of {', '.join(MODES)}")


def mask_noise(mode: str, grid: tuple[int, int], mask_ratio: float, seed: int, painted=None, batch: int = 1):
    """(noise (batch, L) tensor, mask_ratio) for ``model(imgs, mask_ratio, noise=noise)``.

    random: uniform noise from a generator seeded with `seed` (what random_masking would
    draw). Other modes: the chosen patches get noise below every hidden one, in a seeded
    random order, so ``ids_shuffle[:len_keep]`` are exactly the kept patches.
    """
    import torch

    from engine.models.mae import MaskedAutoencoderViT

    h, w = grid
    g = torch.Generator().manual_seed(int(seed))
    visible = visible_patches(mode, grid, mask_ratio, seed, painted)
    if visible is None:
        kept_count(h * w, mask_ratio)  # validates the ratio
        return torch.rand(batch, h * w, generator=g), float(mask_ratio)
    vis = torch.from_numpy(visible.reshape(1, -1)).expand(batch, -1)  # (batch, L)
    noise, ratio = MaskedAutoencoderViT.noise_for_visible(vis.contiguous(), generator=g)
    return noise, ratio
