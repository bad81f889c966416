"""The two unCLIP stages as recipes of the one training loop (DALL·E 2, Ramesh et al. 2022).

    P(x | y) = P(x | z_i, y) · P(z_i | y)       y: caption, z_i: CLIP image embedding

* unclip_prior   P(z_i | y): caption text embedding -> the paired image's CLIP image
                 embedding (the target). kind=diffusion (predicts the clean embedding, as in
                 the paper) or kind=regression (a deterministic MLP), for comparison.
* unclip_decoder P(x | z_i): a U-Net diffusion model on 28×28 images conditioned on the
                 image embedding, which is dropped (null vector) for 10% of the samples so
                 classifier-free guidance works; an exponential moving average of its weights
                 is what gets published.

Both read a trained CLIP/LiT from the catalogue (clip_model) and embed Fashion-MNIST with
it once, before the first step (cached on disk by the CLIP weights' hash).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from engine.data import captions as fm_captions
from engine.data.loader import EpochOrder, step_generator
from engine.jobs import Progress
from engine.train.data_prep import LabelledImages
from engine.errors import TrainingError
from engine.train.loop import Recipe, TrainConfig
from engine.train.recipes.clip import FashionMNISTCaptions
from engine.train.recipes.supervised import FASHION_MNIST_NAMES

DEFAULT_CLIP = "fmnist-lit-tiny"


@dataclass
class UnclipConfig(TrainConfig):
    clip_model: str = DEFAULT_CLIP  # catalogue id of the CLIP/LiT whose embeddings are used
    cond_drop: float = 0.1  # share of samples trained without their condition (for guidance)
    train_limit: int = 0
    test_limit: int = 0

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.cond_drop < 1.0:
            raise TrainingError("cond_drop must be in [0, 1)")


class _UnclipRecipe(LabelledImages, Recipe):
    """Fashion-MNIST, its captions and their CLIP embeddings."""

    dataset_kinds = ("fashion-mnist",)  # the built-in captions are Fashion-MNIST's

    def prepare(self):
        from engine.generate.embeddings import (cached_image_embeddings, cached_text_embeddings, embed_texts,
                                                load_clip)

        cfg = self.config
        if self.dataset.lower() not in FASHION_MNIST_NAMES:
            raise TrainingError(f"the unCLIP recipes train on fashion-mnist with its built-in captions, "
                                f"not {self.dataset!r}")
        train = yield from self.read_labelled_fashion_mnist()
        self.apply_limits()
        yield Progress(None, f"loading {cfg.clip_model}")
        clip, entry, weights = load_clip(cfg.clip_model)
        self.clip_entry = entry
        self.train_emb = yield from cached_image_embeddings(clip, entry, weights, self.train_x, "fmnist-train")
        self.test_emb = yield from cached_image_embeddings(clip, entry, weights, self.test_x, "fmnist-test")
        self.captions = FashionMNISTCaptions()
        self.text_emb = cached_text_embeddings(clip, weights, self.captions.texts, "captions")  # 490 x D
        self.prompt_emb = embed_texts(clip, [fm_captions.prompts(c)[0] for c in range(len(self.classes))])
        self.embed_dim = int(self.train_emb.shape[1])
        self.order = EpochOrder(len(self.train_y), min(cfg.batch_size, len(self.train_y)), cfg.seed)
        self._epoch_captions: tuple[int, np.ndarray] | None = None
        self.dataset_info = {"name": "fashion-mnist", "source": train.source, "train_size": int(len(self.train_y)),
                             "test_size": int(len(self.test_y)), "classes": list(self.classes),
                             "captions": "built-in templates x paraphrases (engine/data/captions.py)",
                             "clip_model": cfg.clip_model, "clip_sha256": entry.sha256}

    def caption_ids(self, epoch: int) -> np.ndarray:
        if self._epoch_captions is None or self._epoch_captions[0] != epoch:
            self._epoch_captions = (epoch, self.captions.draw(self.train_y, self.config.seed, epoch))
        return self._epoch_captions[1]

    def _tensors(self):
        import torch

        self._train_emb = torch.from_numpy(self.train_emb).to(self.device)
        self._test_emb = torch.from_numpy(self.test_emb).to(self.device)
        self._text_emb = torch.from_numpy(self.text_emb).to(self.device)
        self._prompt_emb = torch.from_numpy(self.prompt_emb).to(self.device)

    def _slug(self, run_name: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", run_name.lower()).strip("-") or "run"


# ---------------------------------------------------------------------------- the prior
@dataclass
class PriorTrainConfig(UnclipConfig):
    kind: str = "diffusion"  # diffusion | regression
    epochs: int = 12
    lr: float = 1e-3
    width: int = 128
    depth: int = 3
    sample_steps: int = 32  # DDIM steps of the diffusion prior in evaluation
    eval_samples: int = 100  # per class prompt

    def validate(self) -> None:
        super().validate()
        from engine.generate.prior import PRIOR_KINDS

        if self.kind not in PRIOR_KINDS:
            raise TrainingError(f"unknown prior kind {self.kind!r}; choose one of {', '.join(PRIOR_KINDS)}")


class PriorRecipe(_UnclipRecipe):
    name = "unclip_prior"
    Config = PriorTrainConfig

    def batch(self, idx, epoch: int):
        return idx, self.caption_ids(epoch)[idx]

    def build(self) -> None:
        from engine.generate.diffusion import NoiseSchedule
        from engine.generate.prior import PriorConfig, build_prior

        cfg = self.config
        self.prior_config = PriorConfig(kind=cfg.kind, embed_dim=self.embed_dim, width=cfg.width, depth=cfg.depth)
        self.model = build_prior(self.prior_config).to(self.device)
        self.schedule = NoiseSchedule.cosine()
        self._tensors()

    def modules(self) -> dict:
        return {"model": self.model}

    def training_step(self, batch, step: int):
        import torch
        import torch.nn.functional as F

        idx, caps = batch
        s = self.prior_config.scale
        x0 = self._train_emb[torch.as_tensor(idx, device=self.device)] * s  # B x D, the target
        text = self._text_emb[torch.as_tensor(caps, device=self.device)] * s
        if self.prior_config.kind == "regression":
            pred = self.model(text)
            return F.mse_loss(pred, x0), {}
        g = step_generator(self.config.seed, step)
        B = len(x0)
        t = torch.randint(0, self.schedule.T, (B,), generator=g).to(self.device)
        noise = torch.randn(x0.shape, generator=g).to(self.device)
        keep = (torch.rand(B, generator=g) >= self.config.cond_drop).to(self.device)
        pred = self.model(self.schedule.q_sample(x0, t, noise), t, text, keep)  # predicts x_0
        return F.mse_loss(pred, x0), {}

    def evaluate(self):
        """Compare what the prior makes for each class prompt with the real image embeddings.

        embedding_class_accuracy: share of prior embeddings whose 10 nearest test-image
        embeddings are mostly of the prompted class; cos_to_nearest_image: how close they are
        to a real image's embedding; diversity: mean pairwise cosine distance among one
        prompt's embeddings (0 for the regression prior).
        """
        import torch

        from engine.generate.prior import sample_prior

        cfg = self.config
        n = cfg.eval_samples
        test_emb, test_y = self._test_emb, torch.as_tensor(self.test_y, device=self.device)
        correct, cos_near, diversity, per_class = 0, [], [], {}
        g = torch.Generator().manual_seed(cfg.seed + 12345)
        for c in range(len(self.classes)):
            text = self._prompt_emb[c:c + 1].expand(n, -1)
            emb = sample_prior(self.model, text, generator=g, steps=cfg.sample_steps)  # n x D
            sims = emb @ test_emb.t()  # n x N_test
            top = sims.topk(10, dim=1)
            votes = torch.nn.functional.one_hot(test_y[top.indices], len(self.classes)).sum(1)  # n x C
            hit = (votes.argmax(1) == c).float()
            correct += int(hit.sum())
            per_class[self.classes[c]] = round(float(hit.mean()), 4)
            cos_near.append(float(top.values[:, 0].mean()))
            pair = emb @ emb.t()
            diversity.append(float((1 - pair)[~torch.eye(n, dtype=torch.bool, device=pair.device)].mean()))
            yield None
        # the held-out loss: test pairs with each image's first class prompt
        with torch.inference_mode():
            s = self.prior_config.scale
            x0 = test_emb * s
            text = self._prompt_emb[test_y] * s
            if self.prior_config.kind == "regression":
                loss = float(torch.nn.functional.mse_loss(self.model(text), x0))
            else:
                g2 = torch.Generator().manual_seed(cfg.seed + 999)
                t = torch.randint(0, self.schedule.T, (len(x0),), generator=g2).to(self.device)
                noise = torch.randn(x0.shape, generator=g2).to(self.device)
                pred = self.model(self.schedule.q_sample(x0, t, noise), t, text)
                loss = float(torch.nn.functional.mse_loss(pred, x0))
        acc = correct / (n * len(self.classes))
        return {"accuracy": acc, "embedding_class_accuracy": acc, "cos_to_nearest_image": float(np.mean(cos_near)),
                "diversity": float(np.mean(diversity)), "test_loss": loss, "per_class": per_class}

    def describe(self) -> dict:
        return {"dataset": self.dataset_info, "model_config": self.prior_config.to_dict(),
                "classes": list(self.classes)}

    def catalogue(self, run_name: str, run_dir) -> dict:
        pc = self.prior_config
        return {"id": f"run-{self._slug(run_name)}", "name": f"unCLIP {pc.kind} prior ({run_name})",
                "family": "unclip-prior", "panels": ["generate"],
                "description": f"A {pc.kind} prior trained here: {self.config.clip_model} text embedding -> "
                               f"image embedding ({pc.embed_dim}-d).",
                "licence": "user", "builder": "unclip_prior", "arch": pc.kind,
                "options": {"clip": self.config.clip_model}}


# ---------------------------------------------------------------------------- the decoder
@dataclass
class DecoderTrainConfig(UnclipConfig):
    epochs: int = 2
    batch_size: int = 64
    lr: float = 8e-4
    warmup_steps: int = 100
    weight_decay: float = 0.0
    channels: str = "32,64"  # U-Net channels per resolution level
    mid_channels: int = 64
    ema_decay: float = 0.995  # the published weights: an exponential moving average
    eval_images: int = 100  # held-out images decoded from their embeddings at evaluation
    eval_steps: int = 25
    eval_guidance: float = 3.0
    eval_every: int = 0  # decoding is slow on a CPU: only at the end

    def validate(self) -> None:
        super().validate()
        try:
            chans = [int(c) for c in self.channels.split(",")]
        except ValueError:
            raise TrainingError(f"channels {self.channels!r}: expected numbers separated by commas") from None
        if not chans or any(c < 8 or c % 8 for c in chans) or self.mid_channels % 8:
            raise TrainingError("channels must be multiples of 8 (GroupNorm uses 8 groups)")


class DecoderRecipe(_UnclipRecipe):
    name = "unclip_decoder"
    Config = DecoderTrainConfig

    def batch(self, idx, epoch: int):
        return idx

    def build(self) -> None:
        import torch

        from engine.generate.diffusion import NoiseSchedule
        from engine.generate.unet import UNet, UNetConfig
        from engine.models.momentum import frozen_copy

        cfg = self.config
        self.unet_config = UNetConfig(channels=tuple(int(c) for c in cfg.channels.split(",")),
                                      mid_channels=cfg.mid_channels, cond_dim=self.embed_dim)
        self.online = UNet(self.unet_config).to(self.device)
        self.ema = frozen_copy(self.online)
        self.schedule = NoiseSchedule.cosine()
        self._x = torch.from_numpy(self.train_x).to(self.device)
        self._tensors()
        # fixed noisy views for the live preview: the same 8 test images, noised to t = 600
        g = torch.Generator().manual_seed(cfg.seed + 7)
        pick = torch.arange(8) * (len(self.test_x) // 8)
        self._preview_x0 = torch.from_numpy(self.test_x[pick.numpy()]).float().div(127.5).sub(1)[:, None]
        self._preview_t = torch.full((8,), 600, dtype=torch.long)
        self._preview_noise = torch.randn(self._preview_x0.shape, generator=g)
        self._preview_emb = self._test_emb[pick.to(self.device)]

    def modules(self) -> dict:
        return {"model": self.ema, "online": self.online}

    def parameters(self):
        return self.online.parameters()

    def training_step(self, batch, step: int):
        import torch
        import torch.nn.functional as F

        idx = torch.as_tensor(batch, device=self.device)
        x0 = self._x[idx].float().div(127.5).sub(1)[:, None]  # B x 1 x 28 x 28 in [-1, 1]
        if self.channels_last:
            x0 = x0.contiguous(memory_format=torch.channels_last)
        emb = self._train_emb[idx]
        g = step_generator(self.config.seed, step)
        B = len(idx)
        t = torch.randint(0, self.schedule.T, (B,), generator=g).to(self.device)
        noise = torch.randn(x0.shape, generator=g).to(self.device)
        keep = (torch.rand(B, generator=g) >= self.config.cond_drop).to(self.device)
        eps = self.online(self.schedule.q_sample(x0, t, noise), t, emb, keep)
        return F.mse_loss(eps.float(), noise), {}

    def after_step(self, step: int) -> None:
        import torch

        # EMA with a warm-up (as in many diffusion codebases): early weights are forgotten fast
        decay = min(self.config.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.online.parameters()):
                e.lerp_(p, 1 - decay)
            for e, b in zip(self.ema.buffers(), self.online.buffers()):
                e.copy_(b)

    def live_view(self, step: int) -> dict | None:
        """The EMA decoder's one-shot estimate of 8 fixed test images from heavy noise."""
        import torch

        with torch.inference_mode():
            x0 = self._preview_x0.to(self.device)
            t = self._preview_t.to(self.device)
            x_t = self.schedule.q_sample(x0, t, self._preview_noise.to(self.device))
            eps = self.ema(x_t, t, self._preview_emb)
            a = self.schedule.abar(t, x_t)
            est = ((x_t - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
        return {"denoise_preview": to_uint8(est)}

    def evaluate(self):
        """Decode held-out images from their CLIP embeddings and ask the built-in classifier
        whether the class survived (reconstruction_class_accuracy), and how close the
        reconstruction's own CLIP embedding is to the one it was decoded from."""
        import torch

        from engine.generate.diffusion import ddim_iter, guided
        from engine.generate.quality import load_judge

        cfg = self.config
        per = max(1, cfg.eval_images // len(self.classes))
        idx = np.concatenate([np.flatnonzero(self.test_y == c)[:per] for c in range(len(self.classes))])
        emb = self._test_emb[torch.as_tensor(idx, device=self.device)]
        g = torch.Generator().manual_seed(cfg.seed + 31)
        images = []
        for start in range(0, len(idx), 50):
            e = emb[start:start + 50]
            x = torch.randn((len(e), 1, 28, 28), generator=g).to(self.device)
            for step in ddim_iter(guided(self.ema, e, cfg.eval_guidance), x, self.schedule, cfg.eval_steps,
                                  clip=1.0):
                x = step.x
                yield None
            images.append(to_uint8(x))
        images = np.concatenate(images)
        judge = load_judge(self.device)
        pred = judge.predict(images)
        acc = float((pred == self.test_y[idx]).mean())
        return {"accuracy": acc, "reconstruction_class_accuracy": acc,
                "per_class": {self.classes[c]: round(float((pred[self.test_y[idx] == c] == c).mean()), 4)
                              for c in range(len(self.classes))}}

    def describe(self) -> dict:
        return {"dataset": self.dataset_info, "model_config": self.unet_config.to_dict(),
                "classes": list(self.classes)}

    def catalogue(self, run_name: str, run_dir) -> dict:
        return {"id": f"run-{self._slug(run_name)}", "name": f"unCLIP decoder ({run_name})",
                "family": "unclip-decoder", "panels": ["generate"],
                "description": f"A U-Net diffusion decoder trained here: {self.config.clip_model} image embedding "
                               f"-> 28x28 image.",
                "licence": "user", "builder": "unclip_decoder", "arch": "unet",
                "options": {"clip": self.config.clip_model}}


def to_uint8(x) -> np.ndarray:
    """(B, 1, H, W) tensor in [-1, 1] -> (B, H, W) uint8."""
    from engine.generate.unclip import to_uint8 as convert

    return convert(x)
