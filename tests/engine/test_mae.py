"""Our MAE module, step by step as in the paper: patches, masking, encoder input, loss."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.models import mae
from engine.models.mae import MaskedAutoencoderViT, num_kept


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return mae.mae_vit_tiny().eval()


@pytest.fixture(scope="module")
def rgb():
    """A small 3-channel MAE: 32 px, 4 × 4 patches of 8 px (L = 16)."""
    torch.manual_seed(1)
    return MaskedAutoencoderViT(img_size=32, patch_size=8, in_chans=3, embed_dim=64, depth=2, num_heads=2,
                                decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2).eval()


def encoder_tokens(model):
    """A forward hook on blocks[0] recording how many tokens the encoder gets."""
    seen = []
    handle = model.blocks[0].register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[1]))
    return seen, handle


# ---------------------------------------------------------------------------- patches
@pytest.mark.parametrize("name", ["tiny", "rgb"])
def test_unpatchify_inverts_patchify(name, request):
    model = request.getfixturevalue(name)
    c, s = model.config.in_chans, model.config.img_size
    x = torch.randn(3, c, s, s)
    patches = model.patchify(x)
    assert patches.shape == (3, model.num_patches, model.patch_size**2 * c)
    assert torch.equal(model.unpatchify(patches), x)


def test_patch_layout_is_row_major_with_channels_last(rgb):
    p = rgb.patch_size
    x = torch.randn(2, 3, 32, 32)
    patches = rgb.patchify(x)
    i, j = 1, 2  # patch row 1, column 2 -> index 1 * 4 + 2
    expected = x[:, :, i * p:(i + 1) * p, j * p:(j + 1) * p].permute(0, 2, 3, 1).reshape(2, -1)
    assert torch.equal(patches[:, i * 4 + j], expected)


def test_pos_embed_is_the_fixed_2d_sincos(rgb):
    """Checked against the formula written out independently in numpy."""
    d, g = rgb.pos_embed.shape[-1], 4

    def one_d(dim, pos):
        omega = 1.0 / 10000 ** (np.arange(dim // 2) / (dim / 2.0))
        out = np.outer(pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    cols, rows = np.meshgrid(np.arange(g), np.arange(g))  # w first, as the official code
    expected = np.concatenate([one_d(d // 2, cols), one_d(d // 2, rows)], axis=1)
    expected = np.concatenate([np.zeros((1, d)), expected])
    assert not rgb.pos_embed.requires_grad and not rgb.decoder_pos_embed.requires_grad
    np.testing.assert_allclose(rgb.pos_embed[0].numpy(), expected, atol=1e-6)


def test_official_parameter_names(rgb):
    top = {k.split(".")[0] for k in rgb.state_dict()}
    assert top == {"cls_token", "pos_embed", "patch_embed", "blocks", "norm", "decoder_embed", "mask_token",
                   "decoder_pos_embed", "decoder_blocks", "decoder_norm", "decoder_pred"}
    assert "patch_embed.proj.weight" in rgb.state_dict()
    assert "decoder_blocks.0.attn.qkv.weight" in rgb.state_dict()


# ---------------------------------------------------------------------------- masking
@pytest.mark.parametrize("ratio", [0.75, 0.5, 0.9, 0.0])
def test_encoder_sees_only_the_kept_tokens(tiny, ratio):
    seen, handle = encoder_tokens(tiny)
    try:
        with torch.no_grad():
            _, _, mask, _, _ = tiny(torch.randn(2, 1, 28, 28), mask_ratio=ratio)
    finally:
        handle.remove()
    length = tiny.num_patches  # 49
    keep = int(length * (1 - ratio) + 0.5)  # round((1 - r) * L), half up
    assert seen == [1 + keep]  # class token + kept patches
    assert (mask == 0).sum(dim=1).tolist() == [keep, keep]


def test_keep_count_at_the_paper_ratio_on_imagenet_grid():
    assert num_kept(196, 0.75) == round(0.25 * 196) == 49
    assert num_kept(196, 1 - 3 / 196) == 3  # no float error dropping a patch
    assert num_kept(196, 0.9) == 20  # round(19.6), where the paper's int() would keep 19
    with pytest.raises(ValueError):
        num_kept(196, 1.0)


def test_ids_restore_inverts_ids_shuffle(tiny):
    with torch.no_grad():
        _, _, mask, ids_shuffle, ids_restore = tiny(torch.randn(3, 1, 28, 28))
    arange = torch.arange(tiny.num_patches).expand(3, -1)
    assert torch.equal(torch.gather(ids_shuffle, 1, ids_restore), arange)
    assert torch.equal(torch.gather(ids_restore, 1, ids_shuffle), arange)
    keep = num_kept(tiny.num_patches, 0.75)
    assert torch.equal(mask, (ids_restore >= keep).float())  # removed = shuffled past len_keep


def test_same_seed_same_mask(tiny):
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        a = tiny(x, generator=torch.Generator().manual_seed(7))
        b = tiny(x, generator=torch.Generator().manual_seed(7))
        c = tiny(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])
    assert torch.equal(a[1], b[1]) and a[0] == b[0]
    assert not torch.equal(a[2], c[2])


def test_explicit_mask_keeps_exactly_the_chosen_patches(tiny):
    length, k = tiny.num_patches, 10
    g = torch.Generator().manual_seed(3)
    visible = torch.zeros(2, length, dtype=torch.bool)
    for row in range(2):
        visible[row, torch.randperm(length, generator=g)[:k]] = True
    noise, ratio = MaskedAutoencoderViT.noise_for_visible(visible, generator=g)
    seen, handle = encoder_tokens(tiny)
    try:
        with torch.no_grad():
            _, _, mask, ids_shuffle, _ = tiny(torch.randn(2, 1, 28, 28), mask_ratio=ratio, noise=noise)
    finally:
        handle.remove()
    assert seen == [1 + k]
    assert torch.equal(mask.bool(), ~visible)
    for row in range(2):
        assert set(ids_shuffle[row, :k].tolist()) == set(torch.nonzero(visible[row]).flatten().tolist())
    with pytest.raises(ValueError):  # rows keeping different numbers of patches cannot be batched
        MaskedAutoencoderViT.noise_for_visible(torch.tensor([[True, False], [True, True]]))


# ---------------------------------------------------------------------------- loss
def test_loss_counts_only_masked_patches(tiny):
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        loss, pred, mask, _, _ = tiny(x)
        visible = (mask == 0).unsqueeze(-1)
        changed_visible = torch.where(visible, pred + 10.0, pred)
        changed_masked = torch.where(visible, pred, pred + 1.0)
        assert torch.allclose(tiny.forward_loss(x, changed_visible, mask), loss)
        assert not torch.allclose(tiny.forward_loss(x, changed_masked, mask), loss)
        by_hand = ((pred - tiny.patchify(x)) ** 2).mean(-1)[mask.bool()].mean()
        assert torch.allclose(loss, by_hand)


def test_norm_pix_loss_differs_from_plain(rgb):
    x = torch.rand(2, 3, 32, 32) * 3 + 1  # far from zero-mean, unit-variance patches
    noise = torch.rand(2, rgb.num_patches)
    with torch.no_grad():
        plain = rgb(x, noise=noise)[0]
        rgb.norm_pix_loss = True
        try:
            normed = rgb(x, noise=noise)[0]
            target = rgb.target(x)
        finally:
            rgb.norm_pix_loss = False
    assert not torch.allclose(plain, normed)
    assert torch.allclose(target.mean(-1), torch.zeros(2, rgb.num_patches), atol=1e-5)


def test_backward_trains_everything_but_the_fixed_embeddings():
    torch.manual_seed(0)
    model = mae.mae_vit_tiny()
    loss = model(torch.randn(2, 1, 28, 28))[0]
    loss.backward()
    assert model.pos_embed.grad is None and model.decoder_pos_embed.grad is None
    assert model.mask_token.grad is not None and model.patch_embed.proj.weight.grad is not None


def test_factories_have_the_official_sizes():
    with torch.device("meta"):
        base = mae.mae_vit_base_patch16()
        huge = mae.mae_vit_huge_patch14()
    assert (base.config.embed_dim, base.config.depth, base.config.num_heads) == (768, 12, 12)
    assert (huge.config.patch_size, huge.config.embed_dim, huge.config.depth) == (14, 1280, 32)
    for cfg in (base.config, huge.config, mae.LARGE):
        assert (cfg.decoder_embed_dim, cfg.decoder_depth, cfg.decoder_num_heads) == (512, 8, 16)
    assert base.pos_embed.shape == (1, 197, 768) and huge.pos_embed.shape == (1, 257, 1280)
