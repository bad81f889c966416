"""Mask modes of the MAE panel and the norm-pix un-normalisation that must not peek.

Every mode (random, grid, block, painted) goes through the model's one shuffle/unshuffle path;
the basics of that path (patchify, len_keep, ids_restore, loss on hidden patches only) are in
test_mae.py. Here: each mode's exact count, its determinism, its shape, and the proof that a
norm-pix reconstruction reads the visible patches only.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.mae import masks
from engine.mae.masks import MaskError, mask_noise, visible_patches
from engine.mae.views import compute_views
from engine.models import mae
from engine.models.mae import num_kept, visible_patch_stats

FMNIST_NORM = ((0.2860,), (0.3530,))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return mae.mae_vit_tiny().eval()  # 28 px, 7 x 7 patches of 4 px


@pytest.fixture(scope="module")
def tiny_norm_pix():
    torch.manual_seed(1)
    return mae.mae_vit_tiny(norm_pix_loss=True).eval()


def encoder_input_lengths(model, imgs, noise, ratio):
    seen = []
    handle = model.blocks[0].register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[1]))
    try:
        with torch.no_grad():
            out = model(imgs, ratio, noise=noise)
    finally:
        handle.remove()
    return seen, out


# ---------------------------------------------------------------------------- every mode, one path
@pytest.mark.parametrize("mode", ["random", "grid", "block"])
@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.75, 0.95])
def test_each_mode_feeds_the_encoder_exactly_round_1_minus_r_L_tokens(tiny, mode, ratio):
    length = tiny.num_patches
    noise, used = mask_noise(mode, (7, 7), ratio, seed=3)
    seen, (_, _, mask, ids_shuffle, ids_restore) = encoder_input_lengths(tiny, torch.randn(1, 1, 28, 28), noise, used)
    keep = num_kept(length, ratio)
    assert seen == [1 + keep]  # class token + the kept patches, nothing else
    assert int((mask == 0).sum()) == keep
    # kept patches come first in ids_shuffle, so the token-order strip reads them off directly
    assert torch.equal(mask[0, ids_shuffle[0, :keep]], torch.zeros(keep))
    assert torch.equal(torch.gather(ids_shuffle, 1, ids_restore), torch.arange(length)[None])


@pytest.mark.parametrize("grid", [(7, 7), (14, 14), (4, 6)])
def test_grid_and_block_counts_on_other_grids(grid):
    h, w = grid
    for ratio in (0.1, 0.5, 0.75, 0.9):
        keep = num_kept(h * w, ratio)
        for mode in ("grid", "block"):
            vis = visible_patches(mode, grid, ratio, seed=5)
            assert vis.shape == grid and int(vis.sum()) == keep, (mode, ratio)


@pytest.mark.parametrize("mode", ["random", "grid", "block"])
def test_same_seed_same_mask_in_every_mode(mode):
    a = mask_noise(mode, (14, 14), 0.75, seed=11)[0]
    b = mask_noise(mode, (14, 14), 0.75, seed=11)[0]
    assert torch.equal(a, b)
    others = [mask_noise(mode, (14, 14), 0.75, seed=s)[0] for s in range(12, 20)]
    keep = num_kept(196, 0.75)
    kept = lambda noise: set(torch.argsort(noise[0])[:keep].tolist())  # noqa: E731
    assert any(kept(o) != kept(a) for o in others)  # the seed matters


def test_grid_at_75_percent_keeps_one_patch_in_four_on_a_lattice():
    vis = visible_patches("grid", (14, 14), 0.75, seed=0)
    rows, cols = np.nonzero(vis)
    assert len(rows) == 49
    assert len(set(rows % 2)) == 1 and len(set(cols % 2)) == 1  # every other row and column
    assert len(set(rows)) == 7 and len(set(cols)) == 7
    assert masks.bayer(4).tolist() == [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]]


def test_block_mode_hides_blocks_not_scattered_patches():
    for seed in range(5):
        hidden = ~visible_patches("block", (14, 14), 0.5, seed=seed)
        padded = np.pad(hidden, 1)
        neighbours = padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
        assert (neighbours[hidden]).all()  # no hidden patch stands alone
        # far fewer hidden/visible borders than a spread-out mask of the same count
        spread = ~visible_patches("grid", (14, 14), 0.5, seed=seed)
        borders = lambda m: int((m[1:] != m[:-1]).sum() + (m[:, 1:] != m[:, :-1]).sum())  # noqa: E731
        assert borders(hidden) < borders(spread) / 2


def test_painted_mask_is_exactly_what_the_encoder_sees(tiny):
    rng = np.random.default_rng(0)
    painted = np.zeros(49, dtype=bool)
    painted[rng.choice(49, size=9, replace=False)] = True
    noise, ratio = mask_noise("painted", (7, 7), 0.75, seed=0, painted=painted.tolist())
    seen, (_, _, mask, ids_shuffle, _) = encoder_input_lengths(tiny, torch.randn(1, 1, 28, 28), noise, ratio)
    assert seen == [1 + 9]
    assert torch.equal(mask[0].bool(), torch.from_numpy(~painted))
    assert set(ids_shuffle[0, :9].tolist()) == set(np.flatnonzero(painted).tolist())
    with pytest.raises(MaskError, match="at least one"):
        mask_noise("painted", (7, 7), 0.75, 0, painted=[False] * 49)
    with pytest.raises(MaskError, match="grid"):
        mask_noise("painted", (7, 7), 0.75, 0, painted=[True] * 16)
    with pytest.raises(MaskError):
        mask_noise("spiral", (7, 7), 0.75, 0)


# ---------------------------------------------------------------------------- norm-pix: visible statistics only
def test_visible_patch_stats_ignore_hidden_pixels():
    torch.manual_seed(0)
    patches = torch.rand(2, 16, 12)  # (N, L, p·p·C) on a 4 x 4 grid
    mask = torch.zeros(2, 16)
    mask[:, [5, 6, 9, 10]] = 1  # the centre is hidden
    mean, var = visible_patch_stats(patches, mask, (4, 4))
    changed = patches.clone()
    changed[:, [5, 6, 9, 10]] = torch.rand(2, 4, 12) * 100 - 50
    changed[0, 5, 0] = float("nan")
    mean2, var2 = visible_patch_stats(changed, mask, (4, 4))
    assert torch.equal(mean, mean2) and torch.equal(var, var2)
    visible = mask[0] == 0
    assert torch.allclose(mean[:, visible, 0], patches[:, visible].mean(-1))  # visible patches keep their own
    # a hidden patch takes its level from its neighbours: brighten the left column only
    bright = patches.clone()
    bright[:, [0, 4, 8, 12]] += 5
    m3, _ = visible_patch_stats(bright, mask, (4, 4))
    assert (m3[:, 5] > m3[:, 6] + 0.5).all()  # patch 5 sits next to the bright column, patch 6 further away


def test_norm_pix_reconstruction_does_not_change_when_hidden_pixels_do(tiny_norm_pix):
    """The proof for MAE-pytorch #40: rewrite every hidden pixel, the reconstruction is unchanged."""
    torch.manual_seed(2)
    img = torch.rand(1, 1, 28, 28)
    a = compute_views(tiny_norm_pix, img, *FMNIST_NORM, "block", 0.75, seed=4)
    hidden_px = torch.from_numpy(np.kron(a.hidden, np.ones((4, 4), dtype=bool)))[None, None]  # (1, 1, 28, 28)
    other = torch.where(hidden_px, 1.0 - img, img)  # every hidden pixel different
    b = compute_views(tiny_norm_pix, other, *FMNIST_NORM, "block", 0.75, seed=4)
    assert np.array_equal(a.hidden, b.hidden)
    assert np.array_equal(a.reconstruction, b.reconstruction)
    assert not np.array_equal(a.original, b.original) and a.masked_mse != b.masked_mse  # the change was real
    assert a.norm_pix and "visible patches" in a.note
    # the leaking way (each patch's own statistics, as MAE-pytorch's demo did) would have changed
    x = (img - 0.286) / 0.353
    with torch.no_grad():
        _, pred, mask, _, _ = tiny_norm_pix(x, 0.75, noise=mask_noise("block", (7, 7), 0.75, 4)[0])
    target = lambda im: tiny_norm_pix.patchify((im - 0.286) / 0.353)  # noqa: E731
    leak = lambda im: pred * (target(im).var(-1, keepdim=True) + 1e-6) ** 0.5 + target(im).mean(-1, keepdim=True)  # noqa: E731
    assert not torch.allclose(leak(img), leak(other))


def test_reconstruct_needs_the_mask_for_norm_pix(tiny_norm_pix):
    pred = torch.zeros(1, 49, 16)
    with pytest.raises(ValueError, match="mask"):
        tiny_norm_pix.reconstruct(pred, torch.zeros(1, 1, 28, 28))


def test_views_are_consistent(tiny):
    torch.manual_seed(3)
    img = torch.rand(1, 1, 28, 28)
    v = compute_views(tiny, img, *FMNIST_NORM, "random", 0.75, seed=1)
    for name in ("original", "masked", "reconstruction", "pasted", "error"):
        arr = v.view(name)
        assert arr.shape == (28, 28, 3) and arr.dtype == np.uint8
    hidden_px = np.kron(v.hidden, np.ones((4, 4), dtype=bool))
    assert np.array_equal(v.pasted[~hidden_px], v.original[~hidden_px])  # visible patches pasted back
    assert np.array_equal(v.pasted[hidden_px], v.reconstruction[hidden_px])
    assert (v.masked[hidden_px] == 128).all()
    assert v.len_keep == 12 and sorted(v.ids_shuffle[:12].tolist()) == sorted(np.flatnonzero(~v.hidden).tolist())
    assert v.masked_mse == pytest.approx(float(v.error_grid[v.hidden].mean()), rel=1e-5)
