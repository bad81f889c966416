"""ALBEF ("align before fuse") on Fashion-MNIST with its built-in captions (engine.models.albef).

One step, the paper's pseudo-code at this scale:

    image_feat, text_feat            (N, D)   unimodal encoders, normalised
    image_feat_m, text_feat_m        (N, D)   momentum encoders, no gradient
    sim_i2t = image_feat · [text_feat_m, text_queue] / temp        (N, N+K)
    targets = alpha · softmax(sim_i2t_m) + (1 - alpha) · positives  (momentum distillation)
    L_itc = (CE(sim_i2t, targets) + CE(sim_t2i, targets')) / 2
    per image a hard negative caption, per caption a hard negative image, drawn from the
    in-batch ITC similarities; L_itm = CE(itm_head(fuse(text, image)), match?) over 3N pairs
    loss = L_itc + L_itm; then the momentum update and the queue write

The positives are the pairs whose captions name the same class (the only labels a
captioned dataset gives): ALBEF's retrieval fine-tuning does the same with image ids. A
negative of the caption's class is not a negative, so ITM never draws one.
`caption_noise` replaces that fraction of the training captions by a caption of a wrong
class (noisy alt-text); momentum distillation (alpha > 0) is ALBEF's answer to it.
MLM is left out (template captions: see engine.models.albef).

The text side reuses the LiT recipe's locked MiniLM: the finite caption set's token states
are computed once in build(). Evaluation: zero-shot accuracy by ITC (as the clip recipe),
by ITM re-ranking of the top-k ITC classes (ALBEF's retrieval recipe), and ITM accuracy on
matched vs mismatched test pairs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.data import captions as fm_captions
from engine.data.loader import step_generator
from engine.train.classify_eval import classification_metrics
from engine.train.data_prep import FASHION_MNIST_NAMES, slug
from engine.errors import TrainingError
from engine.train.recipes.clip import CLIPConfig, CLIPRecipe
from engine.models.vit import vit_config


@dataclass
class ALBEFTrainConfig(CLIPConfig):
    epochs: int = 2  # 936 steps: about 12 minutes on one (shared) CPU thread
    batch_size: int = 128
    eval_every: int = 0  # only at the end: the ITM re-ranking scores 15 pairs per test image
    lr: float = 1e-3
    text_tower: str = "minilm"  # locked MiniLM token states (the only text side ALBEF takes here)
    lock_text: bool = True
    fusion_layers: int = 2
    queue_size: int = 2048  # momentum features kept for ITC
    momentum: float = 0.995
    alpha: float = 0.4  # momentum distillation weight; 0 turns it off
    caption_noise: float = 0.0  # fraction of training captions swapped for a wrong class's
    rerank_k: int = 3  # ITM re-ranks this many ITC classes at evaluation

    def validate(self) -> None:
        super().validate()
        if self.text_tower != "minilm" or not self.lock_text:
            raise TrainingError("albef reads the locked MiniLM's token states: text_tower=minilm, lock_text=true")
        if not 0.0 <= self.alpha <= 1.0:
            raise TrainingError("alpha must be in [0, 1]")
        if not 0.0 <= self.caption_noise < 1.0:
            raise TrainingError("caption_noise must be in [0, 1)")
        if not 0.0 <= self.momentum < 1.0:
            raise TrainingError("momentum must be in [0, 1)")
        if self.queue_size < 1 or self.fusion_layers < 1 or not 1 <= self.rerank_k <= 10:
            raise TrainingError("queue_size and fusion_layers must be at least 1, rerank_k in 1..10")


class ALBEFRecipe(CLIPRecipe):
    name = "albef"
    Config = ALBEFTrainConfig

    # ---------------------------------------------------------------- data
    def prepare(self):
        if self.dataset.lower() not in FASHION_MNIST_NAMES:
            raise TrainingError(f"{self.name} trains on fashion-mnist (its evaluation uses the class prompts)")
        yield from super().prepare()
        self.dataset_info["caption_noise"] = self.config.caption_noise

    def _caption_ids(self, epoch: int):
        """The clean captions of CLIPRecipe, then `caption_noise` of them swapped for a caption of
        another class (fixed by seed and epoch, so a resumed run sees the same noise)."""
        noise = self.config.caption_noise
        if noise <= 0 or (self._epoch_captions is not None and self._epoch_captions[0] == epoch):
            return super()._caption_ids(epoch)
        ids = super()._caption_ids(epoch).copy()
        rng = np.random.default_rng([int(self.config.seed), int(epoch), 0x0015E])
        noisy = np.flatnonzero(rng.random(len(ids)) < noise)
        n_cls = len(self.classes)
        wrong = (self.train_y[noisy] + rng.integers(1, n_cls, size=len(noisy))) % n_cls
        ids[noisy] = self.captions.draw(wrong, self.config.seed, epoch + 1_000_003)
        self._epoch_captions = (epoch, ids)
        return ids

    # ---------------------------------------------------------------- model
    def model_config(self):
        from engine.models.albef import ALBEFConfig

        cfg = self.config
        vision = vit_config(cfg.model, img_size=int(self.train_x.shape[-1]), in_chans=int(self.train_x.shape[1]),
                            num_classes=0, patch_size=cfg.patch_size or None)
        return ALBEFConfig(vision=vision.to_dict(), embed_dim=cfg.embed_dim, width=vision.embed_dim,
                           fusion_layers=cfg.fusion_layers, queue_size=cfg.queue_size, momentum=cfg.momentum,
                           init_temperature=cfg.init_temperature)

    def build(self) -> None:
        from engine.models.albef import Momentum, build_albef

        self.albef_config = self.model_config()
        self.model = build_albef(self.albef_config).to(self.device)
        self.momentum = Momentum(self.model).to(self.device)
        self.data_on_device()

    def data_on_device(self) -> None:
        """The images, normalisation and the caption set's MiniLM token states, on the device."""
        import torch

        self._x = torch.from_numpy(self.train_x).to(self.device)
        self._test_x = torch.from_numpy(self.test_x).to(self.device)
        self._mean = torch.tensor(self.mean, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(self.std, device=self.device).view(1, -1, 1, 1)
        # The locked MiniLM maps each caption to the same token states at every step: once.
        self._tokens, self._mask, _ = self.model.minilm_tokens(self.texts)
        self._caption_class = torch.as_tensor(self.captions.label, device=self.device)
        self._last = None

    def modules(self) -> dict:
        return {"model": self.model, "momentum": self.momentum}

    def parameters(self):
        return self.model.parameters()

    def _text(self, caption_ids, unimodal):
        idx = torch_index(caption_ids, self.device)
        mask = self._mask[idx]
        T = int(mask.sum(1).max())  # trim the padding the whole caption set needed
        return unimodal.text_side(self._tokens[idx, :T], mask[:, :T]), mask[:, :T]

    def training_step(self, batch, step: int):
        import torch
        import torch.nn.functional as F

        from engine.models.albef import itc_targets, sample_hard_negatives, soft_cross_entropy

        cfg, model = self.config, self.model
        x, caption_ids = batch
        g = step_generator(cfg.seed, step)
        x = self.normalise(self.flip(x, g))
        cls = self._caption_class[torch_index(caption_ids, self.device)]  # (N,) the caption's class
        image_embeds, image_feat = model.unimodal.image(x)
        (text_embeds, text_feat), text_mask = self._text(caption_ids, model.unimodal)

        # ---- ITC against the momentum features and the queue
        temp = model.temp
        mom = self.momentum
        with torch.no_grad():
            _, image_feat_m = mom.unimodal.image(x)
            (_, text_feat_m), _ = self._text(caption_ids, mom.unimodal)
            image_all = torch.cat([image_feat_m.t(), mom.image_queue.clone()], 1)  # (D, N+K)
            text_all = torch.cat([text_feat_m.t(), mom.text_queue.clone()], 1)
            classes_all = torch.cat([cls, mom.class_queue])  # (N+K,)
            positives = cls[:, None] == classes_all[None, :]  # (N, N+K)
            alpha = cfg.alpha * min(1.0, step / max(1, self.steps_per_epoch()))  # ALBEF's first-epoch ramp
            i2t_targets = itc_targets(image_feat_m @ text_all / temp, positives, alpha)
            t2i_targets = itc_targets(text_feat_m @ image_all / temp, positives, alpha)
        sim_i2t = image_feat @ text_all / temp  # (N, N+K)
        sim_t2i = text_feat @ image_all / temp
        loss_itc = 0.5 * (soft_cross_entropy(sim_i2t, i2t_targets) + soft_cross_entropy(sim_t2i, t2i_targets))

        # ---- ITM on hard negatives from the in-batch similarities
        N = len(x)
        same = cls[:, None] == cls[None, :]
        with torch.no_grad():
            neg_text, ok_t = sample_hard_negatives(sim_i2t[:, :N], same, g)
            neg_image, ok_i = sample_hard_negatives(sim_t2i[:, :N], same, g)
        *pairs, itm_labels = itm_pairs(text_embeds, text_mask, image_embeds, (neg_text, ok_t), (neg_image, ok_i))
        itm_logits = model.fuse(*pairs)
        loss_itm = F.cross_entropy(itm_logits, itm_labels)

        self._feats = (image_feat_m, text_feat_m, cls)
        self._last = sim_i2t.detach()[:16, :16]
        itc_acc = positives[torch.arange(N), sim_i2t.argmax(1)].float().mean()
        itm_acc = (itm_logits.argmax(1) == itm_labels).float().mean()
        return loss_itc + loss_itm, {"loss_itc": float(loss_itc.detach()), "loss_itm": float(loss_itm.detach()),
                                     "batch_acc": float(itc_acc), "itm_acc": float(itm_acc),
                                     "temperature": float(temp.detach()), "alpha": alpha,
                                     "queue_fill": mom.queue_fill()}

    def flip(self, x, g):
        """Random horizontal flips (the step's generator: the same on resume)."""
        import torch

        if not self.config.flip:
            return x
        flip = (torch.rand(len(x), generator=g) < 0.5).to(x.device)
        return torch.where(flip[:, None, None, None], x.flip(-1), x)

    def after_step(self, step: int) -> None:
        self.model.clamp_temperature()
        self.momentum.update(self.model)
        from engine.train.distributed import all_gather_concat

        # Every rank's momentum features, as ALBEF's concat_all_gather: the queues stay equal.
        self.momentum.enqueue(*(all_gather_concat(t) for t in self._feats))
        self._feats = None

    def live_view(self, step: int) -> dict | None:
        if self._last is None:
            return None
        return {"similarity": self._last.float().softmax(1).cpu().numpy()}

    # ---------------------------------------------------------------- evaluation
    def class_embeddings(self):
        """(C, D) ITC class embeddings (mean of each class's prompts) and the prompts' fusion
        inputs, for the ITM re-ranking: (text_embeds (C·P, T, W), mask, class of each prompt)."""
        import torch

        prompts = [(c, p) for c in range(len(self.classes)) for p in fm_captions.prompts(c)]
        tokens, mask, _ = self.model.minilm_tokens([p for _, p in prompts])
        owner = torch.tensor([c for c, _ in prompts], device=self.device)
        with torch.no_grad():
            embeds, feats = self.model.unimodal.text_side(tokens, mask)
        rows = [torch.nn.functional.normalize(feats[owner == c].mean(0), dim=-1) for c in range(len(self.classes))]
        return torch.stack(rows), (embeds, mask, owner)

    def itm_match_prob(self, image_embeds, text_embeds, text_mask):
        """P(match) for row-aligned (image, text) pairs."""
        return self.model.fuse(text_embeds, text_mask, image_embeds).softmax(-1)[:, 1]

    def test_captions(self):
        """Matched / mismatched test pairs: for each test image a caption of its class and one of another."""
        cfg, n_cls = self.config, len(self.classes)
        rng = np.random.default_rng([cfg.seed, 0x17E5])
        other = (self.test_y + rng.integers(1, n_cls, size=len(self.test_y))) % n_cls
        return self.captions.draw(self.test_y, cfg.seed, -1 % 2**31), self.captions.draw(other, cfg.seed, -2 % 2**31)

    def evaluate(self):
        import torch

        cfg, n_cls = self.config, len(self.classes)
        class_emb, (p_embeds, p_mask, p_owner) = self.class_embeddings()
        true_caps, wrong_caps = self.test_captions()
        conf_itc = np.zeros((n_cls, n_cls), np.int64)
        conf_itm = np.zeros((n_cls, n_cls), np.int64)
        matched = mismatched = 0
        k = min(cfg.rerank_k, n_cls)
        per_class = p_owner.bincount(minlength=n_cls)  # prompts per class
        for start in range(0, len(self.test_y), cfg.eval_batch_size):
            sl = slice(start, start + cfg.eval_batch_size)
            y = self.test_y[sl]
            with torch.inference_mode():
                image_embeds, image_feat = self.model.unimodal.image(self.normalise(self._test_x[sl]))
                sim = image_feat.float() @ class_emb.t()  # (B, C)
                top = sim.topk(k, dim=1).indices  # (B, k)
                # ITM: every image against every prompt of its top-k classes; a class scores its prompts' mean.
                B = len(y)
                cand = top[:, :, None] == p_owner[None, None, :]  # (B, k, C·P)
                b_idx, _, p_idx = cand.nonzero(as_tuple=True)
                probs = self.itm_match_prob(image_embeds[b_idx], p_embeds[p_idx], p_mask[p_idx])
                # index_add_ (a fixed order on CPU), not index_put_(accumulate=True) (CPU atomics)
                score = torch.zeros(B * n_cls, device=probs.device).index_add_(
                    0, b_idx * n_cls + p_owner[p_idx], probs).view(B, n_cls) / per_class
                score = torch.where(torch.zeros_like(score, dtype=torch.bool).scatter_(1, top, True), score, -1.0)
                pred_itm = score.argmax(1)
                # matched vs mismatched captions
                for caps, want in ((true_caps[sl], True), (wrong_caps[sl], False)):
                    (t_emb, _), t_mask = self._text(caps, self.model.unimodal)
                    p = self.itm_match_prob(image_embeds, t_emb, t_mask)
                    hits = int(((p > 0.5) == want).sum())
                    matched, mismatched = (matched + hits, mismatched) if want else (matched, mismatched + hits)
            np.add.at(conf_itc, (y, sim.argmax(1).cpu().numpy()), 1)
            np.add.at(conf_itm, (y, pred_itm.cpu().numpy()), 1)
            yield None
        n = max(1, len(self.test_y))
        return classification_metrics(
            conf_itc, self.classes, zero_shot_accuracy=float(conf_itc.trace() / n),
            itm_rerank_accuracy=float(conf_itm.trace() / n),
            itm_accuracy=(matched + mismatched) / (2 * n), itm_matched_accuracy=matched / n,
            itm_mismatched_accuracy=mismatched / n, temperature=float(self.model.temp.detach()))

    # ---------------------------------------------------------------- description
    def describe(self) -> dict:
        return {"dataset": self.dataset_info, "model_config": self.albef_config.to_dict(),
                "classes": list(self.classes)}

    def catalogue(self, run_name: str, run_dir) -> dict:
        return self.match_entry(
            run_name, "ALBEF", "albef",
            f"A tiny ALBEF trained here: ViT-{self.config.model} image encoder, locked MiniLM + one "
            f"trainable text layer, {self.config.fusion_layers} fusion layers, ITC + ITM "
            f"(alpha {self.config.alpha}, caption noise {self.config.caption_noise}).")

    def match_entry(self, run_name: str, title: str, family: str, description: str) -> dict:
        """The catalogue entry of a run for the Match panel (family `family`, module engine.models.<family>)."""
        side = int(self.train_x.shape[-1])
        return {
            "id": f"run-{slug(run_name)}", "name": f"{title} on {self.dataset_info['name']} ({run_name})",
            "family": family, "panels": ["match"], "description": description,
            "licence": "user", "builder": family, "arch": family,
            "preprocess": {"input_size": side, "resize": side, "mean": list(self.mean), "std": list(self.std),
                           "interpolation": "bilinear", "grayscale": self.train_x.shape[1] == 1},
        }


def itm_pairs(text_embeds, text_mask, image_embeds, negative_texts, negative_images):
    """ITM's pairs and labels: the N matched pairs, then each image with its negative caption and
    each caption with its negative image (only the rows whose draw is valid).

    negative_texts / negative_images: (index (N,), valid (N,)) from sample_hard_negatives.
    -> (text pairs, their mask, image pairs, labels: 1 matched, 0 not)."""
    import torch

    (neg_text, ok_t), (neg_image, ok_i) = negative_texts, negative_images
    ok_t, ok_i = ok_t.nonzero().squeeze(1), ok_i.nonzero().squeeze(1)
    # index_select, not t[idx]: the backward of t[idx] sums repeated rows with CPU atomics in
    # no fixed order (a negative drawn twice), so two identical runs would drift apart by ~1e-7.
    text_idx = torch.cat([neg_text[ok_t], ok_i])
    image_idx = torch.cat([ok_t, neg_image[ok_i]])
    N = len(text_embeds)
    labels = torch.cat([torch.ones(N), torch.zeros(len(ok_t) + len(ok_i))]).long().to(text_embeds.device)
    return (torch.cat([text_embeds, text_embeds.index_select(0, text_idx)]),
            torch.cat([text_mask, text_mask.index_select(0, text_idx)]),
            torch.cat([image_embeds, image_embeds.index_select(0, image_idx)]), labels)


def torch_index(ids, device):
    import torch

    return torch.as_tensor(np.asarray(ids), device=device)
