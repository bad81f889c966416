"""Held-out evaluation the classifying recipes share (supervised, probe/fine-tune, CLIP zero-shot).

One confusion-matrix pass and one metrics dict, so the Train panel and the CLI read the same
keys whichever recipe produced them.
"""
from __future__ import annotations

import numpy as np


def classify_in_chunks(logits_of, x, y, n_cls: int, batch_size: int, autocast):
    """Generator (one None per chunk, so a job can stop between chunks): returns (confusion, loss_sum)
    of `logits_of` over the device tensors (x, y), with summed cross-entropy."""
    import torch
    import torch.nn.functional as F

    confusion = np.zeros((n_cls, n_cls), dtype=np.int64)
    loss_sum = 0.0
    for start in range(0, len(y), batch_size):
        with torch.inference_mode(), autocast():
            logits = logits_of(x[start:start + batch_size]).float()
            y_chunk = y[start:start + batch_size]
            loss_sum += float(F.cross_entropy(logits, y_chunk, reduction="sum"))
            pred = logits.argmax(-1)
        np.add.at(confusion, (y_chunk.cpu().numpy(), pred.cpu().numpy()), 1)
        yield None
    return confusion, loss_sum


def classification_metrics(confusion: np.ndarray, classes, **after_accuracy) -> dict:
    """accuracy, then `after_accuracy` (recipe-specific numbers), per-class accuracy and the matrix."""
    per_class = confusion.diagonal() / np.maximum(1, confusion.sum(1))
    n = max(1, int(confusion.sum()))  # every held-out image lands in exactly one cell
    return {"accuracy": float(confusion.trace() / n), **after_accuracy,
            "per_class_accuracy": per_class,
            "per_class": {name: round(float(a), 4) for name, a in zip(classes, per_class)},
            "confusion_matrix": confusion}
