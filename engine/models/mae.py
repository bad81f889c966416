"""Masked Autoencoder (He et al., "Masked Autoencoders Are Scalable Vision Learners", 2021).

Written after the paper and the layout of facebookresearch/mae's ``models_mae.py``, with
the official parameter names (``cls_token``, ``pos_embed``, ``patch_embed.proj``,
``blocks.N``, ``norm``, ``decoder_embed``, ``mask_token``, ``decoder_pos_embed``,
``decoder_blocks.N``, ``decoder_norm``, ``decoder_pred``) so the official checkpoints
(``{"model": state_dict}``) load strictly.

The steps, as in the paper:

1. ``patchify``: cut the image into L = (H/p)·(W/p) patches of p·p·C values.
2. ``random_masking``: shuffle the L patch tokens by the argsort of per-patch noise and keep
   the first ``len_keep`` (lower noise = kept); ``ids_restore`` undoes the shuffle.
3. ``forward_encoder``: a ViT over the kept tokens only (plus the class token).
4. ``forward_decoder``: a small ViT over all L positions: encoded tokens back in place,
   a shared learned ``mask_token`` at every masked position; predicts each patch's pixels.
5. ``forward_loss``: mean squared error on the *masked* patches only, optionally against
   per-patch normalised pixels (``norm_pix_loss``).

Symbols in the shape comments: N batch, C channels, H, W image size, p patch side,
h = H/p, w = W/p, L = h·w patches, D encoder width, Dd decoder width, len_keep kept patches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from functools import partial

import torch
from timm.models.vision_transformer import Block, PatchEmbed
from torch import nn


@dataclass(frozen=True)
class MAEConfig:
    """Architecture and loss of one MAE; the defaults are the paper's ViT-Large."""

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    mlp_ratio: float = 4.0
    norm_pix_loss: bool = False

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2


#: Field name -> type, for parsing catalogue options (strings) into a config.
CONFIG_FIELDS = {f.name: f.type for f in fields(MAEConfig)}


def num_kept(num_patches: int, mask_ratio: float) -> int:
    """len_keep = round(L · (1 - mask_ratio)).

    The paper's code truncates (int); for the published ratios (0.75 of 196, 0.75 of 49) both
    agree, and rounding keeps the slider honest elsewhere (0.9 of 196 keeps 20 tokens, not 19).
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    return max(1, min(num_patches, int(num_patches * (1.0 - mask_ratio) + 0.5)))


# ---------------------------------------------------------------------------- fixed 2D sin-cos position embedding
def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """(M,) positions -> (M, dim): sin of pos·ω on the first half, cos on the second, ω = 1/10000^(2i/dim)."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding width must be even, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0)
    omega = 1.0 / 10000**omega  # (dim/2,)
    out = pos.to(torch.float64).reshape(-1)[:, None] * omega[None, :]  # (M, dim/2), outer product
    return torch.cat([out.sin(), out.cos()], dim=1)  # (M, dim)


def sincos_2d(dim: int, grid_size: int, cls_token: bool = True) -> torch.Tensor:
    """(1 + g², dim) embedding of a g × g grid (row-major patches), a zero row first for the class token.

    Half the channels encode the column (x) index, half the row (y) index, in that order,
    as in the official code (whose meshgrid puts w first).
    """
    if dim % 4:
        raise ValueError(f"2D sin-cos embedding width must be a multiple of 4, got {dim}")
    rows, cols = torch.meshgrid(torch.arange(grid_size), torch.arange(grid_size), indexing="ij")  # (g, g) each
    emb = torch.cat([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], dim=1)  # (g², dim)
    if cls_token:
        emb = torch.cat([torch.zeros(1, dim, dtype=emb.dtype), emb], dim=0)  # (1 + g², dim)
    return emb.float()


# ---------------------------------------------------------------------------- the model
class MaskedAutoencoderViT(nn.Module):
    """Masked autoencoder with a ViT encoder and a lightweight ViT decoder."""

    def __init__(self, config: MAEConfig | None = None, **overrides):
        super().__init__()
        cfg = replace(config or MAEConfig(), **overrides)
        if cfg.img_size % cfg.patch_size:
            raise ValueError(f"img_size {cfg.img_size} is not a multiple of patch_size {cfg.patch_size}")
        self.config = cfg
        self.norm_pix_loss = cfg.norm_pix_loss
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        num_patches = cfg.num_patches

        # ---- encoder: the ViT that only ever sees the visible patches
        self.patch_embed = PatchEmbed(cfg.img_size, cfg.patch_size, cfg.in_chans, cfg.embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        # fixed 2D sin-cos embedding, stored (official checkpoints carry it) but never trained
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, cfg.embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList([
            Block(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
            for _ in range(cfg.depth)])
        self.norm = norm_layer(cfg.embed_dim)

        # ---- decoder: narrow and shallow, sees all L positions
        self.decoder_embed = nn.Linear(cfg.embed_dim, cfg.decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, cfg.decoder_embed_dim),
                                              requires_grad=False)
        self.decoder_blocks = nn.ModuleList([
            Block(cfg.decoder_embed_dim, cfg.decoder_num_heads, cfg.mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
            for _ in range(cfg.decoder_depth)])
        self.decoder_norm = norm_layer(cfg.decoder_embed_dim)
        self.decoder_pred = nn.Linear(cfg.decoder_embed_dim, cfg.patch_size**2 * cfg.in_chans, bias=True)

        self.initialize_weights()

    # ------------------------------------------------------------------ initialisation (as in the paper's code)
    def initialize_weights(self) -> None:
        grid = self.config.img_size // self.config.patch_size
        with torch.no_grad():
            self.pos_embed.copy_(sincos_2d(self.pos_embed.shape[-1], grid).unsqueeze(0))  # (1, 1 + L, D)
            self.decoder_pos_embed.copy_(
                sincos_2d(self.decoder_pos_embed.shape[-1], grid).unsqueeze(0))  # (1, 1 + L, Dd)
        # the patch projection is initialised like a Linear layer: view (D, C, p, p) as (D, C·p·p)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))  # (D, C·p·p)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        self.apply(self._init_module)

    @staticmethod
    def _init_module(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------ sizes
    @property
    def patch_size(self) -> int:
        return self.config.patch_size

    @property
    def num_patches(self) -> int:
        return self.config.num_patches

    # ------------------------------------------------------------------ 1. patches <-> images
    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, L, p·p·C) patches, row-major, values ordered (row, column, channel)."""
        p, c = self.config.patch_size, self.config.in_chans
        n, ci, hh, ww = imgs.shape
        if ci != c or hh % p or ww % p:
            raise ValueError(f"expected (N, {c}, H, W) with H, W multiples of {p}, got {tuple(imgs.shape)}")
        h, w = hh // p, ww // p
        x = imgs.reshape(n, c, h, p, w, p)  # (N, C, h, p, w, p)
        x = torch.einsum("nchpwq->nhwpqc", x)  # (N, h, w, p, p, C)
        return x.reshape(n, h * w, p * p * c)  # (N, L, p·p·C)

    def unpatchify(self, x: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
        """(N, L, p·p·C) patches -> (N, C, H, W) images; `grid` = (h, w), square by default."""
        p, c = self.config.patch_size, self.config.in_chans
        n, length, _ = x.shape
        if grid is None:
            h = w = math.isqrt(length)
        else:
            h, w = grid
        if h * w != length:
            raise ValueError(f"{length} patches do not form a {h} x {w} grid")
        x = x.reshape(n, h, w, p, p, c)  # (N, h, w, p, p, C)
        x = torch.einsum("nhwpqc->nchpwq", x)  # (N, C, h, p, w, p)
        return x.reshape(n, c, h * p, w * p)  # (N, C, H, W)

    # ------------------------------------------------------------------ 2. masking
    def random_masking(self, x: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None,
                       generator: torch.Generator | None = None):
        """Keep len_keep of the L tokens per sample: those with the lowest noise.

        x: (N, L, D). noise: (N, L), lower = kept; drawn uniformly (from `generator` when
        given, on its device, so a seed gives the same mask on any device) when None.
        Returns x_masked (N, len_keep, D), mask (N, L) with 0 = kept and 1 = removed,
        ids_restore (N, L) and ids_shuffle (N, L): ``ids_shuffle[:, :len_keep]`` are the
        kept patch indices, and ``ids_restore`` is the inverse permutation.
        """
        n, length, d = x.shape  # N, L, D
        len_keep = num_kept(length, mask_ratio)
        if noise is None:
            gen_device = generator.device if generator is not None else x.device
            noise = torch.rand(n, length, generator=generator, device=gen_device)  # (N, L) in [0, 1)
        elif noise.shape != (n, length):
            raise ValueError(f"noise must be (N, L) = {(n, length)}, got {tuple(noise.shape)}")
        noise = noise.to(x.device)

        ids_shuffle = torch.argsort(noise, dim=1)  # (N, L): ascending, small noise is kept
        ids_restore = torch.argsort(ids_shuffle, dim=1)  # (N, L): where each patch went

        ids_keep = ids_shuffle[:, :len_keep]  # (N, len_keep)
        x_masked = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))  # (N, len_keep, D)

        mask = torch.ones(n, length, device=x.device, dtype=x.dtype)  # (N, L), in shuffled order
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, 1, ids_restore)  # (N, L), back in patch order
        return x_masked, mask, ids_restore, ids_shuffle

    @staticmethod
    def noise_for_visible(visible: torch.Tensor, generator: torch.Generator | None = None):
        """Noise and mask ratio that keep exactly the patches where `visible` is True.

        visible: (N, L) bool, e.g. a mask the user painted; every sample must keep the same
        number of patches (the encoder batches them). Returns (noise (N, L), mask_ratio) for
        ``forward(imgs, mask_ratio, noise=noise)``. Kept patches get noise in [0, 1), the
        others in [1, 2), so the order among kept patches stays random.
        """
        if visible.ndim != 2 or visible.dtype != torch.bool:
            raise ValueError("visible must be an (N, L) bool tensor")
        counts = visible.sum(dim=1)
        if counts.numel() == 0 or bool((counts != counts[0]).any()):
            raise ValueError("every sample must keep the same number of patches")
        k, length = int(counts[0]), visible.shape[1]
        if k < 1:
            raise ValueError("keep at least one patch visible")
        gen_device = generator.device if generator is not None else visible.device
        noise = torch.rand(visible.shape, generator=generator, device=gen_device).to(visible.device)  # (N, L)
        noise = noise + (~visible).to(noise.dtype)  # masked patches sort after every kept one
        return noise, 1.0 - k / length

    # ------------------------------------------------------------------ 3. encoder
    def forward_encoder(self, imgs: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None,
                        generator: torch.Generator | None = None):
        """(N, C, H, W) -> latent (N, 1 + len_keep, D), mask (N, L), ids_restore (N, L), ids_shuffle (N, L)."""
        x = self.patch_embed(imgs)  # (N, L, D)
        x = x + self.pos_embed[:, 1:, :]  # (N, L, D): position added before the shuffle

        x, mask, ids_restore, ids_shuffle = self.random_masking(x, mask_ratio, noise, generator)  # (N, len_keep, D)

        cls_token = self.cls_token + self.pos_embed[:, :1, :]  # (1, 1, D)
        x = torch.cat([cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (N, 1 + len_keep, D)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)  # (N, 1 + len_keep, D)
        return x, mask, ids_restore, ids_shuffle

    # ------------------------------------------------------------------ 4. decoder
    def forward_decoder(self, x: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """latent (N, 1 + len_keep, D) -> predicted patches (N, L, p·p·C)."""
        x = self.decoder_embed(x)  # (N, 1 + len_keep, Dd)
        n, keep1, dd = x.shape
        length = ids_restore.shape[1]  # L

        mask_tokens = self.mask_token.expand(n, length + 1 - keep1, -1)  # (N, L - len_keep, Dd)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)  # (N, L, Dd), in shuffled order, no cls
        x_ = torch.gather(x_, 1, ids_restore.unsqueeze(-1).expand(-1, -1, dd))  # (N, L, Dd), unshuffled
        x = torch.cat([x[:, :1, :], x_], dim=1)  # (N, 1 + L, Dd), cls back in front

        x = x + self.decoder_pos_embed  # (N, 1 + L, Dd)
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x)
        x = self.decoder_pred(x)  # (N, 1 + L, p·p·C)
        return x[:, 1:, :]  # (N, L, p·p·C): drop the cls token

    # ------------------------------------------------------------------ 5. loss
    def target(self, imgs: torch.Tensor) -> torch.Tensor:
        """What the decoder is trained to predict: (N, L, p·p·C) patches, normalised per patch
        when ``norm_pix_loss``."""
        target = self.patchify(imgs)  # (N, L, p·p·C)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)  # (N, L, 1)
            var = target.var(dim=-1, keepdim=True)  # (N, L, 1), unbiased as in the paper's code
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        return target

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error over the removed patches only (mask == 1)."""
        loss = (pred - self.target(imgs)) ** 2  # (N, L, p·p·C)
        loss = loss.mean(dim=-1)  # (N, L): mean loss per patch
        return (loss * mask).sum() / mask.sum().clamp_min(1)  # mean over removed patches

    def forward(self, imgs: torch.Tensor, mask_ratio: float = 0.75, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None):
        """Returns (loss, pred (N, L, p·p·C), mask (N, L), ids_shuffle (N, L), ids_restore (N, L))."""
        latent, mask, ids_restore, ids_shuffle = self.forward_encoder(imgs, mask_ratio, noise, generator)
        pred = self.forward_decoder(latent, ids_restore)  # (N, L, p·p·C)
        loss = self.forward_loss(imgs, pred, mask)
        return loss, pred, mask, ids_shuffle, ids_restore

    def reconstruct(self, pred: torch.Tensor, imgs: torch.Tensor | None = None,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted patches (N, L, p·p·C) -> images (N, C, H, W) in the input's pixel space.

        A norm-pix model predicts each patch normalised by its own mean and variance, which a
        reconstruction cannot know for a hidden patch: using the hidden patch's true statistics
        would leak its answer (MAE-pytorch #40). Given the input `imgs` and the `mask`, every
        patch is mapped back with statistics read from the *visible* patches only
        (``visible_patch_stats``). Without a mask a norm-pix prediction cannot be un-normalised.
        """
        if self.norm_pix_loss:
            if imgs is None or mask is None:
                raise ValueError("a norm-pix prediction needs the input and the mask to be un-normalised")
            grid = self.grid_size(imgs)
            mean, var = visible_patch_stats(self.patchify(imgs), mask, grid)  # (N, L, 1) each
            pred = pred * (var + 1.0e-6) ** 0.5 + mean
        return self.unpatchify(pred, self.grid_size(imgs) if imgs is not None else None)

    def grid_size(self, imgs: torch.Tensor) -> tuple[int, int]:
        """(h, w) patch grid of (N, C, H, W) images."""
        p = self.config.patch_size
        return imgs.shape[-2] // p, imgs.shape[-1] // p


def visible_patch_stats(patches: torch.Tensor, mask: torch.Tensor, grid: tuple[int, int],
                        sigma: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-patch mean and variance estimated from the visible patches only.

    patches: (N, L, p·p·C); mask: (N, L), 1 = hidden. A visible patch keeps its own
    statistics; a hidden patch gets the Gaussian-weighted (``sigma`` in patches) average of
    the visible patches' statistics, so its brightness and contrast follow its neighbours.
    The hidden patches' pixels are never read: their values only enter through a weight of 0.
    Returns (mean, var), each (N, L, 1), variance unbiased as in the paper's loss.
    """
    h, w = grid
    n, length, _ = patches.shape
    if h * w != length or mask.shape != (n, length):
        raise ValueError(f"patches {tuple(patches.shape)} and mask {tuple(mask.shape)} do not match a {h} x {w} grid")
    visible = (mask < 0.5).to(torch.float64)  # (N, L)
    # zero the hidden patches first, so not even a NaN there can reach the statistics
    seen = torch.where(visible.bool().unsqueeze(-1), patches, torch.zeros((), dtype=patches.dtype,
                                                                         device=patches.device))
    own_mean = seen.to(torch.float64).mean(dim=-1)  # (N, L)
    own_var = seen.to(torch.float64).var(dim=-1)  # (N, L)
    rows = torch.arange(length, device=patches.device) // w
    cols = torch.arange(length, device=patches.device) % w
    d2 = (rows[:, None] - rows[None, :]) ** 2 + (cols[:, None] - cols[None, :]) ** 2  # (L, L) squared distance
    kernel = torch.exp(-d2.to(torch.float64) / (2 * sigma**2))  # (L, L)
    weights = kernel[None] * visible[:, None, :]  # (N, L, L): target patch x visible source patch
    total = weights.sum(dim=-1)  # (N, L)
    near_mean = (weights * own_mean[:, None, :]).sum(-1) / total.clamp_min(1e-300)  # (N, L)
    near_var = (weights * own_var[:, None, :]).sum(-1) / total.clamp_min(1e-300)  # (N, L)
    keep_own = visible.bool()
    mean = torch.where(keep_own, own_mean, near_mean)
    var = torch.where(keep_own, own_var, near_var)
    return mean.to(patches.dtype).unsqueeze(-1), var.to(patches.dtype).unsqueeze(-1)  # (N, L, 1) each


# ---------------------------------------------------------------------------- the official configurations
BASE = MAEConfig(patch_size=16, embed_dim=768, depth=12, num_heads=12)
LARGE = MAEConfig(patch_size=16, embed_dim=1024, depth=24, num_heads=16)
HUGE = MAEConfig(patch_size=14, embed_dim=1280, depth=32, num_heads=16)
#: Small enough to train on a CPU: Fashion-MNIST, 28 × 28 grey, 7 × 7 patches of 4 × 4.
TINY = MAEConfig(img_size=28, patch_size=4, in_chans=1, embed_dim=128, depth=4, num_heads=4,
                 decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4)


def mae_vit_base_patch16(**overrides) -> MaskedAutoencoderViT:
    """ViT-B/16 encoder (768-d, 12 blocks, 12 heads); decoder 512-d, 8 blocks, 16 heads."""
    return MaskedAutoencoderViT(BASE, **overrides)


def mae_vit_large_patch16(**overrides) -> MaskedAutoencoderViT:
    """ViT-L/16 encoder (1024-d, 24 blocks, 16 heads); decoder 512-d, 8 blocks, 16 heads."""
    return MaskedAutoencoderViT(LARGE, **overrides)


def mae_vit_huge_patch14(**overrides) -> MaskedAutoencoderViT:
    """ViT-H/14 encoder (1280-d, 32 blocks, 16 heads); decoder 512-d, 8 blocks, 16 heads."""
    return MaskedAutoencoderViT(HUGE, **overrides)


def mae_vit_tiny(**overrides) -> MaskedAutoencoderViT:
    """A 0.9M-parameter MAE for 28 × 28 greyscale images (Fashion-MNIST), trainable on a CPU."""
    return MaskedAutoencoderViT(TINY, **overrides)


FACTORIES = {
    "mae_vit_base_patch16": mae_vit_base_patch16,
    "mae_vit_large_patch16": mae_vit_large_patch16,
    "mae_vit_huge_patch14": mae_vit_huge_patch14,
    "mae_vit_tiny": mae_vit_tiny,
}
CONFIGS = {"mae_vit_base_patch16": BASE, "mae_vit_large_patch16": LARGE, "mae_vit_huge_patch14": HUGE,
           "mae_vit_tiny": TINY}
