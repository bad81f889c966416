"""Pseudo-labels (self-training): train on the few labelled images, predict the unlabelled ones,
keep the confident predictions as labels, train on, repeat (the study notes, §5).

The supervised ViT recipe with a different training set. Of Fashion-MNIST's (or a class
folder's) training images, `labels_per_class` per class keep their label; the rest are the
unlabelled pool. The run is made of rounds, one loop "epoch" of `steps_per_round` steps each:

* round 0 learns the labelled images only: the labelled-only baseline;
* at the end of every round the model predicts the pool (eval mode, no augmentation) and
  each prediction whose softmax confidence is at least `threshold` becomes a label
  (engine.train.pseudo_label_rules.accept: kept once given by default, so the pool shrinks and
  the pseudo-labelled set grows; with `relabel` the whole pool is predicted afresh each round;
  `class_limit` caps the new labels per class and round, the most confident first);
* the next round trains on labelled + pseudo-labelled images, batches drawn uniformly from both.

Training continues (one model, one AdamW, one warm-up + cosine schedule over all rounds)
rather than restarting each round: a restart would need the loop to reset its optimizer, and
continuing is the classic self-training recipe. A `threshold` above 1 takes no pseudo-labels:
the same run on the labelled images only, the fair control for the last round.

Each round's evaluation reports the test accuracy and the pseudo-labels that round's model
gave (used by the next round): count, accuracy against the true labels, coverage of the pool,
per-class counts and a true-vs-pseudo confusion matrix; `round0_accuracy` and
`accuracy_gain` compare the latest round with the baseline. Everything resume needs (the
pseudo-labels and the per-round table) is in the checkpoint and batches are a pure function
of (seed, round, batch), so a run stopped mid-round resumes exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.data.shard import shard
from engine.errors import TrainingError
from engine.train.pseudo_label_rules import UNLABELLED, accept, labelled_per_class, pseudo_stats
from engine.train.recipes.supervised import SupervisedConfig, SupervisedRecipe

#: Columns of the per-round table (the "rounds" metric and the checkpointed history).
ROUND_COLUMNS = ("step", "accuracy", "train_images", "pseudo_labels", "pseudo_label_accuracy",
                 "pseudo_label_coverage")


@dataclass
class PseudoLabelConfig(SupervisedConfig):
    epochs: int = 4  # rounds in all: round 0 on the labelled images only, then with pseudo-labels
    batch_size: int = 128
    steps_per_round: int = 300  # one round is one loop epoch, evaluated at its end
    labels_per_class: int = 100  # labelled images kept per class; the rest of the training set is unlabelled
    threshold: float = 0.95  # softmax confidence from which a prediction becomes a label (> 1: none)
    relabel: bool = False  # False: a pseudo-label is kept once given; True: the pool is labelled afresh each round
    class_limit: int = 0  # at most this many new pseudo-labels per class and round, the surest first (0: any)

    def validate(self) -> None:
        super().validate()
        if self.steps_per_round < 1:
            raise TrainingError("steps_per_round must be at least 1")
        if self.labels_per_class < 1:
            raise TrainingError("labels_per_class must be at least 1")
        if not self.threshold > 0:
            raise TrainingError("threshold must be above 0 (above 1: no pseudo-labels, a labelled-only control)")
        if self.eval_every != 1:
            raise TrainingError("eval_every must be 1: every round ends with its evaluation")


class PseudoLabelRecipe(SupervisedRecipe):
    name = "pseudo_label"
    Config = PseudoLabelConfig

    # ---------------------------------------------------------------- data
    def prepare(self):
        yield from super().prepare()
        cfg = self.config
        self.labelled = labelled_per_class(self.train_y, cfg.labels_per_class, cfg.seed)
        self.is_labelled = np.zeros(len(self.train_y), bool)
        self.is_labelled[self.labelled] = True
        self.unlabelled = int((~self.is_labelled).sum())
        self.pseudo = np.full(len(self.train_y), UNLABELLED, np.int64)
        rounds = math.ceil(cfg.max_steps / cfg.steps_per_round) if cfg.max_steps > 0 else cfg.epochs
        self.history = np.full((rounds, len(ROUND_COLUMNS)), np.nan)
        self.pseudo_counts = np.zeros(len(self.classes), np.int64)
        self.order = None  # rounds deal their own batches (the training set grows)
        self._last_step = self._train_images = 0
        self.dataset_info.update(labelled=int(len(self.labelled)), unlabelled=self.unlabelled)

    def steps_per_epoch(self) -> int:
        return self.config.steps_per_round

    def training_indices(self) -> np.ndarray:
        """This round's training set: the labelled images, then the pseudo-labelled ones."""
        return np.concatenate([self.labelled, np.flatnonzero(self.pseudo != UNLABELLED)])

    def batches(self, epoch: int, start: int):
        """Round `epoch`'s batches from `start`: passes over its training set, each in an order
        fixed by (seed, round, pass), as many as the round's steps need."""
        cfg = self.config
        idx = self.training_indices()
        self._train_images = len(idx)  # for this round's evaluation
        bs = min(cfg.batch_size, len(idx))
        per_pass = max(1, len(idx) // bs)
        order, order_pass = None, -1
        for k in range(start, cfg.steps_per_round):
            p, b = divmod(k, per_pass)
            if p != order_pass:
                order, order_pass = np.random.default_rng([cfg.seed, epoch, p, 0x9E1A]).permutation(len(idx)), p
            yield self.batch(shard(idx[order[b * bs:(b + 1) * bs]]), epoch)

    def build(self) -> None:
        import torch

        super().build()
        self._y = torch.from_numpy(self.targets()).to(self.device)

    def targets(self) -> np.ndarray:
        """Per training image: its label if labelled, else its pseudo-label (or UNLABELLED)."""
        return np.where(self.is_labelled, self.train_y, self.pseudo)

    # ---------------------------------------------------------------- rounds
    def after_step(self, step: int) -> None:
        """At the end of a round: predict the pool and take the confident predictions as labels."""
        import torch

        self._last_step = step
        if step % self.config.steps_per_round:
            return
        cfg = self.config
        pool = np.flatnonzero(~self.is_labelled & (cfg.relabel | (self.pseudo == UNLABELLED)))
        pred, conf = self.predict(pool)
        self.pseudo = accept(self.pseudo, pool, pred, conf, cfg.threshold, cfg.relabel,
                             cfg.class_limit)
        self._y = torch.from_numpy(self.targets()).to(self.device)

    def predict(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(class, softmax confidence) of the training images `indices`, in eval mode."""
        import torch

        preds, confs = [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode(), self.autocast():
                for s in range(0, len(indices), self.config.eval_batch_size):
                    chunk = torch.from_numpy(indices[s:s + self.config.eval_batch_size]).to(self.device)
                    conf, pred = self.model(self.normalise(self._x[chunk])).float().softmax(-1).max(-1)
                    preds.append(pred.cpu().numpy())
                    confs.append(conf.cpu().numpy())
        finally:
            self.model.train(was_training)
        return np.concatenate(preds), np.concatenate(confs)

    def evaluate(self):
        """The test set as for `supervised`, then the pseudo-labels this round's model gave."""
        metrics = yield from super().evaluate()
        cfg = self.config
        r = min(len(self.history) - 1, max(0, (self._last_step - 1) // cfg.steps_per_round))
        stats = pseudo_stats(self.pseudo, self.train_y, self.unlabelled, len(self.classes))
        self.pseudo_counts = stats["pseudo_label_counts"]
        train_images = self._train_images
        pacc = stats["pseudo_label_accuracy"]
        self.history[r] = (self._last_step, metrics["accuracy"], train_images, stats["pseudo_labels"],
                           np.nan if pacc is None else pacc, stats["pseudo_label_coverage"])
        base = float(self.history[0, 1])
        rounds = [{k: (None if math.isnan(v) else (int(v) if k in ("step", "train_images", "pseudo_labels")
                                                     else round(float(v), 4)))
                   for k, v in zip(ROUND_COLUMNS, row)} | {"round": i}
                  for i, row in enumerate(self.history) if not math.isnan(row[0])]
        return {"accuracy": metrics["accuracy"], "round": r, "round0_accuracy": base,
                "accuracy_gain": metrics["accuracy"] - base, "train_images": train_images,
                **stats, **{k: v for k, v in metrics.items() if k != "accuracy"}, "rounds": rounds}

    def live_view(self, step: int) -> dict | None:
        """The per-class counts of the pseudo-labels the run trains on, for the panel's bar plot."""
        return {"pseudo_label_counts": self.pseudo_counts.copy(), "pseudo_label_classes": list(self.classes)}

    # ---------------------------------------------------------------- state and description
    def state_tensors(self) -> dict:
        import torch

        return {"pseudo": torch.from_numpy(self.pseudo.copy()), "history": torch.from_numpy(self.history.copy()),
                "pseudo_counts": torch.from_numpy(self.pseudo_counts.copy()),
                # what the round's evaluation reads, for a stop that lands just before it
                "round_state": torch.tensor([self._last_step, self._train_images], dtype=torch.int64)}

    def load_state_tensors(self, tensors: dict) -> None:
        import torch

        self.pseudo = tensors["pseudo"].numpy().astype(np.int64)
        self.history = tensors["history"].numpy().astype(np.float64)
        self.pseudo_counts = tensors["pseudo_counts"].numpy().astype(np.int64)
        if "round_state" in tensors:  # checkpoints written before it had none
            self._last_step, self._train_images = (int(v) for v in tensors["round_state"])
        self._y = torch.from_numpy(self.targets()).to(self.device)

    def describe(self) -> dict:
        cfg = self.config
        return {**super().describe(),
                "pseudo_label": {"labels_per_class": cfg.labels_per_class, "threshold": cfg.threshold,
                                 "relabel": cfg.relabel, "class_limit": cfg.class_limit,
                                 "steps_per_round": cfg.steps_per_round,
                                 "labelled": int(len(self.labelled)), "unlabelled": self.unlabelled}}

    def catalogue(self, run_name: str, run_dir) -> dict:
        entry = super().catalogue(run_name, run_dir)
        entry["name"] = f"ViT-{self.config.model} · pseudo-labels on {self.dataset_info['name']} ({run_name})"
        entry["description"] += (f" Self-trained: {self.config.labels_per_class} labels per class, confident "
                                 f"predictions (≥ {self.config.threshold:g}) on the other images as labels.")
        return entry
