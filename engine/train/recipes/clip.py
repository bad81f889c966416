"""CLIP and LiT on image-text pairs: Fashion-MNIST with its built-in captions, or a captioned folder.

One step, CLIP's pseudo-code with the notes' symbols:

    I_e = normalise(W_i · image_tower(images))     # N x D
    T_e = normalise(W_t · text_tower(captions))    # N x D
    logits = exp(t) · I_e · T_eᵀ                   # N x N, t learned, exp(t) ≤ 100
    loss = (CE(logits, arange N) + CE(logitsᵀ, arange N)) / 2

"lit" locks the pretrained MiniLM text tower (Zhai et al. 2022 lock the image side; here
the pretrained side is the text). A locked tower sees only the finite set of captions, so
their MiniLM features are computed once in build() and each step costs only the image
tower. "clip" trains both towers (a tiny BERT from scratch by default).

Evaluation is zero-shot classification of the held-out images: each class is the mean of
the embeddings of its prompts ("a photo of a sneaker.", "a photo of a running shoe.", ...)
and an image goes to the nearest class. Captioned folders (no classes) report
image→text recall@1 on the held-out pairs instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data import captions as fm_captions
from engine.data.loader import EpochOrder, step_generator
from engine.train.classify_eval import classification_metrics
from engine.train.data_prep import (FASHION_MNIST_NAMES, LabelledImages, channel_stats, decode_with_progress,
                                     slug, to_nchw)
from engine.errors import TrainingError
from engine.train.loop import Recipe, TrainConfig
from engine.models.vit import PRESETS, vit_config


class FashionMNISTCaptions:
    """Every caption the built-in templates can make, in (class, template, paraphrase) order,
    and a seeded draw of one caption per image per epoch (a pure function of seed and epoch,
    so a resumed run sees the same captions)."""

    def __init__(self):
        self.texts: list[str] = []
        n_t, n_p = len(fm_captions.TEMPLATES), max(len(p) for p in fm_captions.PARAPHRASES)
        self.table = np.full((len(fm_captions.PARAPHRASES), n_t, n_p), -1, np.int64)  # class x template x name
        for c, names in enumerate(fm_captions.PARAPHRASES):
            for t, template in enumerate(fm_captions.TEMPLATES):
                for p, name in enumerate(names):
                    self.table[c, t, p] = len(self.texts)
                    self.texts.append(template.format(fm_captions.with_article(name)))
        self.paraphrases = np.array([len(p) for p in fm_captions.PARAPHRASES])
        self.label = np.repeat(np.arange(len(self.paraphrases)), n_t * self.paraphrases)  # class of each text

    def draw(self, labels: np.ndarray, seed: int, epoch: int) -> np.ndarray:
        """A caption index (into texts) for each label."""
        rng = np.random.default_rng([int(seed), int(epoch), 0xCA9])
        n = len(labels)
        t = rng.integers(self.table.shape[1], size=n)
        p = (rng.random(n) * self.paraphrases[labels]).astype(np.int64)
        return self.table[labels, t, p]


@dataclass
class CLIPConfig(TrainConfig):
    epochs: int = 5
    lr: float = 1e-3
    model: str = "tiny"  # the image tower: a ViT preset
    patch_size: int = 0  # 0: chosen for the image size
    embed_dim: int = 128  # the joint embedding space
    text_tower: str = "tiny"  # "tiny" (a small BERT from scratch) | "minilm" (pretrained)
    lock_text: bool = False
    init_temperature: float = 0.07
    flip: bool = True  # random horizontal flips of the images
    image_size: int = 0  # folders: the side images are resized to (0: 28)
    grayscale: bool = True  # folders: one channel, like Fashion-MNIST
    test_fraction: float = 0.1  # folders: held-out pairs
    train_limit: int = 0
    test_limit: int = 0
    eval_batch_size: int = 1000

    def validate(self) -> None:
        super().validate()
        from engine.models.lit import TEXT_TOWERS

        if self.model not in PRESETS:
            raise TrainingError(f"unknown model {self.model!r}; choose one of {', '.join(PRESETS)}")
        if self.text_tower not in TEXT_TOWERS:
            raise TrainingError(f"unknown text_tower {self.text_tower!r}; choose one of {', '.join(TEXT_TOWERS)}")
        if self.batch_size < 2:
            raise TrainingError("a contrastive batch needs at least 2 pairs")
        if not 0.0 <= self.test_fraction < 1.0:
            raise TrainingError("test_fraction must be in [0, 1)")


@dataclass
class LiTTrainConfig(CLIPConfig):
    text_tower: str = "minilm"
    lock_text: bool = True
    epochs: int = 4  # 936 steps: about 9 minutes on one CPU thread
    lr: float = 2e-3  # only the image side learns: a small ViT takes the same rate as supervised


class CLIPRecipe(LabelledImages, Recipe):
    name = "clip"
    Config = CLIPConfig

    # ---------------------------------------------------------------- data
    def prepare(self):
        cfg = self.config
        if self.dataset.lower() in FASHION_MNIST_NAMES:
            train = yield from self.read_labelled_fashion_mnist()
            self.dataset_info = {"name": "fashion-mnist", "source": train.source,
                                 "captions": "built-in templates x paraphrases (engine/data/captions.py)"}
            self.captions = FashionMNISTCaptions()
            self.texts = self.captions.texts
            self.train_caption = self.test_caption = None
        else:
            yield from self._prepare_folder(Path(self.dataset))
        self.apply_limits()
        if cfg.train_limit and self.train_caption is not None:
            self.train_caption = self.train_caption[:cfg.train_limit]
        if cfg.test_limit and self.test_caption is not None:
            self.test_caption = self.test_caption[:cfg.test_limit]
        self.train_x = np.ascontiguousarray(to_nchw(self.train_x))  # (N, C, H, W)
        self.test_x = np.ascontiguousarray(to_nchw(self.test_x))
        self.order = EpochOrder(len(self.train_y), min(cfg.batch_size, len(self.train_y)), cfg.seed)
        self._epoch_captions: tuple[int, np.ndarray] | None = None
        self.dataset_info.update(train_size=int(len(self.train_y)), test_size=int(len(self.test_y)),
                                 classes=list(self.classes), unique_captions=len(self.texts),
                                 image_size=int(self.train_x.shape[-1]), channels=int(self.train_x.shape[1]),
                                 mean=list(self.mean), std=list(self.std))

    def _prepare_folder(self, root: Path):
        from engine.data.folders import scan_captioned

        cfg = self.config
        if not root.exists():
            raise TrainingError(f"dataset {self.dataset!r} is neither fashion-mnist nor an existing folder or CSV "
                                f"of image-caption pairs")
        scan = scan_captioned(root)
        data = yield from decode_with_progress(scan, cfg.image_size or 28, cfg.grayscale)
        self.texts = sorted(set(data.captions))
        index = {t: i for i, t in enumerate(self.texts)}
        caption_ids = np.array([index[c] for c in data.captions], np.int64)
        rng = np.random.default_rng([cfg.seed, 0xCA97])
        perm = rng.permutation(len(caption_ids))
        k = int(round(cfg.test_fraction * len(perm)))
        k = min(max(k, 1 if len(perm) > 2 and cfg.test_fraction > 0 else 0), len(perm) - 2)
        test, train = perm[:k], perm[k:]
        self.classes = ()
        self.train_x, self.train_y, self.train_caption = data.images[train], caption_ids[train], caption_ids[train]
        self.test_x, self.test_y, self.test_caption = data.images[test], caption_ids[test], caption_ids[test]
        pixels = self.train_x.reshape(len(self.train_x), -1, 1 if cfg.grayscale else 3) / 255.0
        self.mean, self.std = channel_stats(pixels, axis=(0, 1))
        self.dataset_info = {"name": root.name, "source": str(root.resolve()), "kind": "image-caption pairs",
                             "skipped_count": len(data.skipped)}

    def _caption_ids(self, epoch: int) -> np.ndarray:
        """The caption of every training image in `epoch` (fixed by seed and epoch: exact resume)."""
        if self.train_caption is not None:
            return self.train_caption
        if self._epoch_captions is None or self._epoch_captions[0] != epoch:
            self._epoch_captions = (epoch, self.captions.draw(self.train_y, self.config.seed, epoch))
        return self._epoch_captions[1]

    def batch(self, idx, epoch: int):
        return self._x[idx], self._caption_ids(epoch)[idx]

    # ---------------------------------------------------------------- model
    def model_config(self):
        from engine.models.lit import LiTConfig

        cfg = self.config
        channels, size = self.train_x.shape[1], self.train_x.shape[-1]
        vision = vit_config(cfg.model, img_size=int(size), in_chans=int(channels), num_classes=0,
                            patch_size=cfg.patch_size or None).to_dict()
        text_dim = 384 if cfg.text_tower == "minilm" else 128
        return LiTConfig(vision=vision, embed_dim=cfg.embed_dim, text_tower=cfg.text_tower,
                         lock_text=cfg.lock_text, text_dim=text_dim, init_temperature=cfg.init_temperature)

    def build(self) -> None:
        import torch

        from engine.models.lit import build_lit

        self.lit_config = self.model_config()
        self.model = build_lit(self.lit_config).to(self.device)
        self._x = torch.from_numpy(self.train_x).to(self.device)
        self._test_x = torch.from_numpy(self.test_x).to(self.device)
        self._mean = torch.tensor(self.mean, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(self.std, device=self.device).view(1, -1, 1, 1)
        self._text_feats = None
        if self.lit_config.lock_text:
            # A locked tower maps each caption to the same features at every step: compute them once.
            self._text_feats = self._features_of(self.texts)
        self._last_logits = None

    def _features_of(self, texts: list[str], chunk: int = 256):
        import torch

        with torch.no_grad():
            return torch.cat([self.model.text_features(texts[i:i + chunk]) for i in range(0, len(texts), chunk)])

    def modules(self) -> dict:
        return {"model": self.model}

    def normalise(self, x_uint8):
        return (x_uint8.float() / 255.0 - self._mean) / self._std

    def training_step(self, batch, step: int):
        import torch

        from engine.models.lit import clip_loss
        from engine.train import distributed

        x, caption_ids = batch
        if self.config.flip:
            g = step_generator(self.config.seed, step)
            flip = (torch.rand(len(x), generator=g) < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        image_emb = self.model.encode_image(self.normalise(x))
        if self._text_feats is not None:
            feats = self._text_feats[torch.as_tensor(caption_ids, device=self.device)]
        else:
            feats = self.model.text_features([self.texts[i] for i in caption_ids])
        text_emb = self.model.encode_text_features(feats)
        ids = torch.as_tensor(np.asarray(caption_ids), device=self.device)
        if distributed.current() is None:
            loss, logits = clip_loss(image_emb.float(), text_emb.float(), self.model.logit_scale)
            all_ids = ids
        else:  # the whole global batch is every rank's negatives, as in one process
            loss, logits = clip_loss(image_emb.float(), text_emb.float(), self.model.logit_scale,
                                     gather=distributed.gather_with_grad, offset=distributed.row_offset(len(ids)))
            all_ids = distributed.all_gather_concat(ids)
        self._last_logits = logits.detach()[:16, :16]
        # A duplicate caption in the batch is as right as the diagonal one.
        acc = (all_ids[logits.argmax(1)] == ids).float().mean()
        return loss, {"batch_acc": float(acc), "temperature": float(1.0 / self.model.logit_scale.detach().exp())}

    def after_step(self, step: int) -> None:
        import torch

        from engine.models.lit import MAX_LOGIT_SCALE

        with torch.no_grad():  # CLIP clips the learned temperature at 1/100
            self.model.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)

    def live_view(self, step: int) -> dict | None:
        """The batch similarity matrix (16 × 16 corner): its diagonal lights up as it learns."""
        if self._last_logits is None:
            return None
        return {"similarity": self._last_logits.float().softmax(1).cpu().numpy()}

    # ---------------------------------------------------------------- evaluation
    def class_embeddings(self):
        """(C, D): each class is the renormalised mean of its prompts' embeddings."""
        import torch

        rows = []
        with torch.no_grad():
            for c in range(len(self.classes)):
                emb = self.model.encode_text_features(self._features_of(list(fm_captions.prompts(c))))
                rows.append(torch.nn.functional.normalize(emb.mean(0), dim=-1))
        return torch.stack(rows)

    def evaluate(self):
        import torch

        if not self.classes:
            return (yield from self._evaluate_retrieval())
        class_emb = self.class_embeddings()  # C x D
        with torch.no_grad():  # the single first prompt per class, for comparison
            single = self.model.encode_text_features(
                self._features_of([fm_captions.prompts(c)[0] for c in range(len(self.classes))]))
        n_cls = len(self.classes)
        confusion = np.zeros((n_cls, n_cls), dtype=np.int64)
        single_correct = 0
        for start in range(0, len(self.test_y), self.config.eval_batch_size):
            with torch.inference_mode():
                x = self.normalise(self._test_x[start:start + self.config.eval_batch_size])
                emb = self.model.encode_image(x).float()
                pred = (emb @ class_emb.t()).argmax(1).cpu().numpy()
                pred_single = (emb @ single.t()).argmax(1).cpu().numpy()
            y = self.test_y[start:start + self.config.eval_batch_size]
            np.add.at(confusion, (y, pred), 1)
            single_correct += int((pred_single == y).sum())
            yield None
        n = max(1, len(self.test_y))
        return classification_metrics(confusion, self.classes, zero_shot_accuracy=float(confusion.trace() / n),
                                      zero_shot_single_prompt_accuracy=single_correct / n,
                                      temperature=float(1.0 / self.model.logit_scale.detach().exp()))

    def _evaluate_retrieval(self):
        """Image -> caption recall@1 among the held-out captions."""
        import torch

        caps = sorted(set(self.test_caption.tolist()))
        col = {c: i for i, c in enumerate(caps)}
        with torch.no_grad():
            text_emb = self.model.encode_text_features(self._features_of([self.texts[c] for c in caps]))
        hits = 0
        for start in range(0, len(self.test_x), self.config.eval_batch_size):
            with torch.inference_mode():
                emb = self.model.encode_image(self.normalise(self._test_x[start:start + self.config.eval_batch_size]))
                pred = (emb.float() @ text_emb.t()).argmax(1).cpu().numpy()
            truth = np.array([col[c] for c in self.test_caption[start:start + self.config.eval_batch_size]])
            hits += int((pred == truth).sum())
            yield None
        r1 = hits / max(1, len(self.test_x))
        return {"accuracy": r1, "recall_at_1": r1, "temperature": float(1.0 / self.model.logit_scale.detach().exp())}

    # ---------------------------------------------------------------- description
    def describe(self) -> dict:
        return {"dataset": self.dataset_info, "model_config": self.lit_config.to_dict(),
                "classes": list(self.classes)}

    def catalogue(self, run_name: str, run_dir) -> dict:
        lc = self.lit_config
        towers = ("locked MiniLM text tower" if lc.lock_text and lc.text_tower == "minilm"
                  else f"{'trainable ' if not lc.lock_text else 'locked '}{lc.text_tower} text tower")
        return {
            "id": f"run-{slug(run_name)}",
            "name": f"{'LiT' if lc.lock_text else 'CLIP'} on {self.dataset_info['name']} ({run_name})",
            "family": "clip", "panels": ["search", "generate"],
            "description": (f"A tiny CLIP trained here: ViT-{self.config.model} image tower, {towers}, "
                            f"{lc.embed_dim}-d joint space."),
            "licence": "user", "builder": "lit", "arch": "lit",
            "preprocess": {"input_size": int(self.train_x.shape[-1]), "resize": int(self.train_x.shape[-1]),
                           "mean": list(self.mean), "std": list(self.std), "interpolation": "bilinear",
                           "grayscale": self.train_x.shape[1] == 1},
        }


class LiTRecipe(CLIPRecipe):
    name = "lit"
    Config = LiTTrainConfig
