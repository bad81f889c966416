"""MAE pretraining: hide most patches, train the encoder-decoder to paint them back.

On Fashion-MNIST (labels unused) or an unlabelled image folder. Each step draws a random
mask from (seed, step), so a resumed run draws the masks it would have drawn. At each
evaluation: the hidden-patch MSE on held-out images with fixed masks, against the
mean-of-visible-patches baseline (engine.mae.quality). While it trains, `live_view`
sends the four FAIR-demo views of one fixed held-out image every `preview_every` steps.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from engine.data import fashion_mnist
from engine.data.loader import EpochOrder, step_generator
from engine.train.data_prep import (FASHION_MNIST_NAMES, channel_stats, decode_with_progress, read_fashion_mnist,
                                     slug, to_nchw)
from engine.errors import TrainingError
from engine.train.loop import Recipe, TrainConfig

PRESETS = ("tiny", "small")


@dataclass
class MAEPretrainConfig(TrainConfig):
    lr: float = 1.5e-3
    beta2: float = 0.95  # the paper's AdamW betas (0.9, 0.95)
    mask_ratio: float = 0.75
    model: str = "tiny"  # tiny: 128-d encoder x 4, 64-d decoder x 2; small: 192-d x 6, 96-d x 2
    norm_pix_loss: bool = False  # predict per-patch normalised pixels (better features, darker previews)
    patch_size: int = 0  # 0: chosen for the image size (4 for 28 px: a 7 x 7 grid)
    embed_dim: int = 0  # 0: the preset's
    depth: int = 0
    num_heads: int = 0
    decoder_embed_dim: int = 0
    decoder_depth: int = 0
    decoder_num_heads: int = 0
    flip: bool = True  # random horizontal flips
    image_size: int = 0  # folders: the side images are resized to (0: 32); Fashion-MNIST is 28
    grayscale: bool = False  # folders: train on one channel
    test_fraction: float = 0.1  # folders: share held out for evaluation and the preview
    train_limit: int = 0  # use only the first N training images (0: all)
    eval_images: int = 1000  # held-out images scored at each evaluation (0: all)
    eval_batch_size: int = 500
    preview_every: int = 100  # steps between live reconstructions of the preview image (0: never)
    preview_index: int = 0  # which held-out image the live preview shows

    def validate(self) -> None:
        super().validate()
        if self.model not in PRESETS:
            raise TrainingError(f"unknown MAE preset {self.model!r}; choose one of {', '.join(PRESETS)}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise TrainingError("mask_ratio must be between 0 and 1 (exclusive)")
        if not 0.0 < self.test_fraction < 1.0:
            raise TrainingError("test_fraction must be in (0, 1)")


def patch_size_for(img_size: int) -> int:
    """A patch side giving a grid of about 7 (small images) to 14 (224 px) patches a side."""
    target = min(14, max(7, img_size // 8))
    divisors = [p for p in range(1, img_size + 1) if img_size % p == 0]
    return min(divisors, key=lambda p: (abs(img_size // p - target), -p))


def model_config(cfg: MAEPretrainConfig, img_size: int, in_chans: int):
    """The MAEConfig of a run: preset, then the non-zero overrides."""
    from engine.models.mae import TINY

    base = TINY if cfg.model == "tiny" else replace(TINY, embed_dim=192, depth=6, num_heads=3,
                                                    decoder_embed_dim=96, decoder_depth=2, decoder_num_heads=3)
    out = replace(base, img_size=img_size, in_chans=in_chans, norm_pix_loss=cfg.norm_pix_loss,
                  patch_size=cfg.patch_size or patch_size_for(img_size))
    extra = {k: getattr(cfg, k) for k in ("embed_dim", "depth", "num_heads", "decoder_embed_dim",
                                          "decoder_depth", "decoder_num_heads") if getattr(cfg, k)}
    out = replace(out, **extra)
    if img_size % out.patch_size:
        raise TrainingError(f"patch size {out.patch_size} does not divide the image size {img_size}")
    if out.embed_dim % out.num_heads or out.decoder_embed_dim % out.decoder_num_heads:
        raise TrainingError("embed_dim and decoder_embed_dim must be divisible by their head counts")
    if out.embed_dim % 4 or out.decoder_embed_dim % 4:
        raise TrainingError("embed_dim and decoder_embed_dim must be multiples of 4 (2D sin-cos embedding)")
    return out


class MAERecipe(Recipe):
    name = "mae"
    Config = MAEPretrainConfig

    # ---------------------------------------------------------------- data
    def prepare(self):
        cfg = self.config
        if self.dataset.lower() in FASHION_MNIST_NAMES:
            train, test = yield from read_fashion_mnist(self.download)
            self.train_x, self.test_x = train.images[:, None], test.images[:, None]  # (N, 1, 28, 28)
            self.mean, self.std = (fashion_mnist.MEAN,), (fashion_mnist.STD,)
            self.dataset_info = {"name": "fashion-mnist", "source": train.source}
            skipped: list = []
        else:
            skipped = yield from self._prepare_folder(Path(self.dataset))
        if cfg.train_limit:
            self.train_x = self.train_x[:cfg.train_limit]
        if cfg.eval_images:
            self.test_x = self.test_x[:cfg.eval_images]
        self.train_x, self.test_x = np.ascontiguousarray(self.train_x), np.ascontiguousarray(self.test_x)
        if not 0 <= cfg.preview_index < len(self.test_x):
            raise TrainingError(f"preview_index {cfg.preview_index} is outside the {len(self.test_x)} held-out images")
        self.order = EpochOrder(len(self.train_x), cfg.batch_size, cfg.seed)
        self.dataset_info.update(train_size=int(len(self.train_x)), test_size=int(len(self.test_x)),
                                 image_size=int(self.train_x.shape[-1]), channels=int(self.train_x.shape[1]),
                                 mean=list(self.mean), std=list(self.std),
                                 skipped=[list(s) for s in skipped[:100]], skipped_count=len(skipped))

    def _prepare_folder(self, root: Path):
        from engine.data.folders import scan_unlabelled

        cfg = self.config
        if not root.is_dir():
            raise TrainingError(f"dataset {self.dataset!r} is neither a dataset Patchwork knows "
                                f"({FASHION_MNIST_NAMES[0]}) nor an existing folder")
        scan = scan_unlabelled(root)
        data = yield from decode_with_progress(scan, cfg.image_size or 32, cfg.grayscale)
        images = to_nchw(data.images)  # (N, C, S, S)
        if len(images) < 2:
            raise TrainingError(f"{root}: MAE pretraining needs at least two images (one is held out)")
        order = np.random.default_rng([cfg.seed, 0xE7A1]).permutation(len(images))
        n_test = min(len(images) - 1, max(1, int(round(cfg.test_fraction * len(images)))))
        self.test_x, self.train_x = images[order[:n_test]], images[order[n_test:]]
        pixels = self.train_x.astype(np.float64) / 255.0  # (N, C, S, S)
        self.mean, self.std = channel_stats(pixels, axis=(0, 2, 3))
        self.dataset_info = {"name": root.name, "source": str(root.resolve()), "kind": "unlabelled-folder"}
        return data.skipped

    def batch(self, idx, epoch: int):
        return self._x[idx]

    # ---------------------------------------------------------------- model
    def build(self) -> None:
        import torch

        from engine.models.mae import MaskedAutoencoderViT

        self.mae_config = model_config(self.config, int(self.train_x.shape[-1]), int(self.train_x.shape[1]))
        self.model = MaskedAutoencoderViT(self.mae_config).to(self.device)
        self._x = torch.from_numpy(self.train_x).to(self.device)  # uint8 on the device
        self._test_x = torch.from_numpy(self.test_x).to(self.device)
        self._mean = torch.tensor(self.mean, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(self.std, device=self.device).view(1, -1, 1, 1)
        self._last_preview: int | None = None

    def modules(self) -> dict:
        return {"model": self.model}

    def normalise(self, x_uint8):
        return (x_uint8.float() / 255.0 - self._mean) / self._std

    def training_step(self, batch, step: int):
        import torch

        x = self.normalise(batch)
        g = step_generator(self.config.seed, step)
        if self.config.flip:
            flip = (torch.rand(x.shape[0], generator=g) < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        loss, _, _, _, _ = self.model(x, self.config.mask_ratio, generator=g)
        return loss.float(), {}

    def evaluate(self):
        from engine.mae import quality

        metrics = yield from quality.evaluate(self.model, self._test_x, self.mean, self.std,
                                              self.config.mask_ratio, seed=0,
                                              batch_size=self.config.eval_batch_size)
        return {"masked_mse": metrics["masked_mse"],
                "baseline_mean_visible_mse": metrics["baseline_mean_visible_mse"],
                "baseline_nearby_visible_mse": metrics["baseline_nearby_visible_mse"],
                "eval_images": metrics["images"]}

    # ---------------------------------------------------------------- live preview
    def live_view(self, step: int) -> dict | None:
        """The four views of held-out image `preview_index` with a fixed mask (seed 0), every
        `preview_every` steps (at the loop's log steps). Draws no global random numbers, so
        previews do not change what a resumed run computes."""
        cfg = self.config
        if cfg.preview_every <= 0:
            return None
        if self._last_preview is not None and step - self._last_preview < cfg.preview_every:
            return None
        self._last_preview = step
        import torch

        from engine.mae.views import compute_views

        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                img01 = self._test_x[cfg.preview_index:cfg.preview_index + 1].float() / 255.0  # (1, C, H, W)
                views = compute_views(self.model, img01, self.mean, self.std, "random", cfg.mask_ratio, seed=0)
        finally:
            self.model.train(was_training)
        return {"preview": {"step": step, "index": cfg.preview_index, **views.preview_dict()}}

    # ---------------------------------------------------------------- description
    def describe(self) -> dict:
        return {"dataset": self.dataset_info, "model_config": asdict(self.mae_config)}

    def catalogue(self, run_name: str, run_dir) -> dict:
        mc = self.mae_config
        options = {k: (str(int(v)) if isinstance(v, bool) else str(v)) for k, v in asdict(mc).items()}
        return {
            "id": f"run-{slug(run_name)}",
            "name": f"MAE-{self.config.model} on {self.dataset_info['name']} ({run_name})",
            "family": "mae", "panels": ["mae"],
            "description": (f"A masked autoencoder ({mc.depth}-block {mc.embed_dim}-d encoder, {mc.decoder_depth}-block "
                            f"{mc.decoder_embed_dim}-d decoder, {mc.patch_size}-px patches) pretrained here on "
                            f"{self.dataset_info['name']}."),
            "licence": "user", "builder": "mae", "arch": "mae_vit_tiny",
            "options": options,
            "preprocess": {"input_size": mc.img_size, "resize": mc.img_size, "mean": list(self.mean),
                           "std": list(self.std), "interpolation": "bilinear", "grayscale": mc.in_chans == 1},
        }
