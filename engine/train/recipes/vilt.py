"""ViLT on Fashion-MNIST with its built-in captions (engine.models.vilt): ITM only.

One step:

    text  = embed_text(locked MiniLM token states of the captions)      (N, T, W)
    image = embed_image(images): a linear projection of raw patches      (N, L, W)
    per image a negative caption, per caption a negative image (never of the caption's class)
    L_itm = CE(itm_head(transformer([text, image])), match?) over the N matched + ~2N negative pairs

ViLT has no ITC, so ALBEF's hard negatives (drawn from the in-batch ITC similarities) have
no source here. `negatives` chooses: "text" (default) draws them with probability
softmax(MiniLM caption similarity / 0.1) over the batch rows of another class, so a shirt's
negative is more often a T-shirt or pullover caption than a bag's: hard, at no cost (the
locked MiniLM's sentence vectors are fixed, computed once); "random" draws uniformly among
the other classes' rows, as the ViLT paper does (it swaps the image at random). Scoring
every in-batch pair by ITM first would cost N² transformer passes a step. Measured (one epoch,
seed 0): "text" 79.2 % zero-shot by ITM and 90.3 % ITM accuracy, "random" 78.4 % and 92.0 %.

Data, caption noise (`caption_noise`, as ALBEF) and flips are the ALBEF recipe's. Evaluation:
ITM accuracy on the same matched / mismatched test pairs as ALBEF, and zero-shot accuracy by
ITM: every test image against the prompts of every class (a class scores its prompts' mean
P(match)): one full pass per (image, prompt), the price of single-stream fusion.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data import captions as fm_captions
from engine.data.loader import step_generator
from engine.train.classify_eval import classification_metrics
from engine.errors import TrainingError
from engine.train.recipes.albef import ALBEFRecipe, itm_pairs, torch_index
from engine.train.recipes.clip import CLIPConfig

NEGATIVES = ("text", "random")
TEXT_NEGATIVE_TEMPERATURE = 0.1


@dataclass
class ViLTTrainConfig(CLIPConfig):
    epochs: int = 1
    batch_size: int = 128
    eval_every: int = 0  # only at the end: zero-shot scores every (image, prompt) pair
    lr: float = 1e-3
    text_tower: str = "minilm"  # locked MiniLM token states (the only text side ViLT takes here)
    lock_text: bool = True
    depth: int = 4  # transformer layers over the joint sequence
    heads: int = 4
    width: int = 128
    negatives: str = "text"  # "text": hard, by MiniLM caption similarity | "random": any other class
    caption_noise: float = 0.0  # fraction of training captions swapped for a wrong class's
    zero_shot_prompts: int = 1  # prompts per class scored at evaluation (0: all of them)

    def validate(self) -> None:
        super().validate()
        if self.text_tower != "minilm" or not self.lock_text:
            raise TrainingError("vilt reads the locked MiniLM's token states: text_tower=minilm, lock_text=true")
        if self.negatives not in NEGATIVES:
            raise TrainingError(f"negatives must be one of {', '.join(NEGATIVES)}")
        if not 0.0 <= self.caption_noise < 1.0:
            raise TrainingError("caption_noise must be in [0, 1)")
        if self.depth < 1 or self.heads < 1 or self.width % self.heads or self.zero_shot_prompts < 0:
            raise TrainingError("depth and heads must be at least 1, width a multiple of heads, "
                                "zero_shot_prompts at least 0")


class ViLTRecipe(ALBEFRecipe):
    name = "vilt"
    Config = ViLTTrainConfig
    dataset_kinds = ("fashion-mnist",)  # its captions and evaluation are Fashion-MNIST's class prompts

    # ---------------------------------------------------------------- model
    def model_config(self):
        from engine.models.vilt import ViLTConfig
        from engine.models.vit import patch_size_for

        cfg, side = self.config, int(self.train_x.shape[-1])
        return ViLTConfig(img_size=side, in_chans=int(self.train_x.shape[1]),
                          patch_size=cfg.patch_size or patch_size_for(side), width=cfg.width, depth=cfg.depth,
                          heads=cfg.heads)

    def build(self) -> None:
        import torch.nn.functional as F

        from engine.models.albef import mean_pool
        from engine.models.vilt import build_vilt

        self.vilt_config = self.model_config()
        self.model = build_vilt(self.vilt_config).to(self.device)
        self.data_on_device()
        sentence = F.normalize(mean_pool(self._tokens, self._mask), dim=-1)  # MiniLM's own sentence vectors
        self._caption_sim = sentence @ sentence.t()  # (K, K), for the "text" hard negatives

    def modules(self) -> dict:
        return {"model": self.model}

    def _text(self, caption_ids):
        """Embedded caption tokens (N, T, W) and mask (N, T), padding trimmed to the batch's longest."""
        idx = torch_index(caption_ids, self.device)
        mask = self._mask[idx]
        T = int(mask.sum(1).max())
        return self.model.embed_text(self._tokens[idx, :T]), mask[:, :T]

    def training_step(self, batch, step: int):
        import torch
        import torch.nn.functional as F

        from engine.models.albef import sample_hard_negatives

        cfg, model = self.config, self.model
        x, caption_ids = batch
        g = step_generator(cfg.seed, step)
        x = self.normalise(self.flip(x, g))
        idx = torch_index(caption_ids, self.device)
        cls = self._caption_class[idx]
        text, text_mask = self._text(caption_ids)
        image = model.embed_image(x)
        same = cls[:, None] == cls[None, :]
        with torch.no_grad():
            if cfg.negatives == "text":
                logits = self._caption_sim[idx][:, idx] / TEXT_NEGATIVE_TEMPERATURE
            else:
                logits = torch.zeros(same.shape, device=x.device)
            # The matrix is symmetric: row i ranks captions for image i, and images (by their caption) for caption i.
            negative_texts = sample_hard_negatives(logits, same, g)
            negative_images = sample_hard_negatives(logits, same, g)
        *pairs, labels = itm_pairs(text, text_mask, image, negative_texts, negative_images)
        itm_logits = model.fuse(*pairs)
        loss = F.cross_entropy(itm_logits, labels)
        N = len(x)
        self._last = itm_logits.detach()[:16]
        acc = (itm_logits.argmax(1) == labels).float()
        return loss, {"itm_acc": float(acc.mean()), "itm_matched_acc": float(acc[:N].mean()),
                      "negative_pairs": int(len(labels) - N)}

    def after_step(self, step: int) -> None:
        pass  # no temperature, momentum model or queue

    def live_view(self, step: int) -> dict | None:
        return None

    # ---------------------------------------------------------------- evaluation
    def itm_probs(self, image, text, text_mask):
        """P(match) for row-aligned (image tokens, text tokens) pairs."""
        return self.model.fuse(text, text_mask, image).softmax(-1)[:, 1]

    def evaluate(self):
        import torch

        cfg, n_cls = self.config, len(self.classes)
        per = cfg.zero_shot_prompts or None
        prompts = [(c, p) for c in range(n_cls) for p in fm_captions.prompts(c)[:per]]
        tokens, mask, _ = self.model.minilm_tokens([p for _, p in prompts])
        owner = torch.tensor([c for c, _ in prompts], device=self.device)
        per_class = owner.bincount(minlength=n_cls)
        true_caps, wrong_caps = self.test_captions()
        conf = np.zeros((n_cls, n_cls), np.int64)
        matched = mismatched = 0
        P = len(prompts)
        chunk = max(1, 2048 // P)  # images per pass: chunk · P sequences
        for start in range(0, len(self.test_y), chunk):
            sl = slice(start, start + chunk)
            with torch.inference_mode():
                image = self.model.embed_image(self.normalise(self._test_x[sl]))  # (B, L, W)
                B = len(image)
                prompt_text = self.model.embed_text(tokens)
                probs = self.itm_probs(image.repeat_interleave(P, 0), prompt_text.repeat(B, 1, 1),
                                       mask.repeat(B, 1)).view(B, P)
                score = torch.zeros(B, n_cls, device=probs.device).index_add_(1, owner, probs) / per_class
                for caps, want in ((true_caps[sl], True), (wrong_caps[sl], False)):
                    text, text_mask = self._text(caps)
                    hits = int(((self.itm_probs(image, text, text_mask) > 0.5) == want).sum())
                    matched, mismatched = (matched + hits, mismatched) if want else (matched, mismatched + hits)
            np.add.at(conf, (self.test_y[sl], score.argmax(1).cpu().numpy()), 1)
            yield None
        n = max(1, len(self.test_y))
        return classification_metrics(
            conf, self.classes, zero_shot_accuracy=float(conf.trace() / n),
            itm_accuracy=(matched + mismatched) / (2 * n), itm_matched_accuracy=matched / n,
            itm_mismatched_accuracy=mismatched / n, zero_shot_prompts_per_class=int(per_class.min()))

    # ---------------------------------------------------------------- description
    def describe(self) -> dict:
        return {"dataset": self.dataset_info, "model_config": self.vilt_config.to_dict(),
                "classes": list(self.classes)}

    def catalogue(self, run_name: str, run_dir) -> dict:
        cfg = self.config
        return self.match_entry(
            run_name, "ViLT", "vilt",
            f"A tiny ViLT trained here: linear patch embedding + locked MiniLM token states, one {cfg.depth}-layer "
            f"transformer over both, ITM only ({cfg.negatives} negatives, caption noise {cfg.caption_noise}).")
