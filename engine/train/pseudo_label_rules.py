"""Pseudo-labelling as plain numpy: which images start labelled, which predictions become
labels, and how good those labels are (the true labels are known for the datasets used here).

Kept apart from the recipe (engine.train.recipes.pseudo_label) so that the rules can be read
and tested without a model.
"""
from __future__ import annotations

import numpy as np

UNLABELLED = -1  # the pseudo-label of an image that has none


def labelled_per_class(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of `per_class` images of every class (all of a smaller class), fixed by the seed."""
    rng = np.random.default_rng([int(seed), 0x9E1])
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def accept(pseudo: np.ndarray, pool: np.ndarray, pred: np.ndarray, conf: np.ndarray, threshold: float,
           relabel: bool, class_limit: int = 0) -> np.ndarray:
    """The pseudo-labels after one pass over `pool` (the indices predicted; pred/conf in pool order).

    A prediction becomes a label when its softmax confidence is at least `threshold`. By default
    labels are kept once given (the pool only shrinks, the pseudo-labelled set only grows);
    with `relabel` every unlabelled image is predicted again and its label is whatever this
    pass says (it may change or drop out). `class_limit` > 0 takes at most that many of each
    predicted class per pass, the most confident first (ties: lower index), so that one easy
    class cannot flood the training set."""
    out = pseudo.copy()
    if relabel:
        out[pool] = UNLABELLED
    sure = np.flatnonzero(conf >= threshold)
    if class_limit > 0:
        ranked = sure[np.lexsort((pool[sure], -conf[sure]))]  # most confident first
        rank_in_class = np.zeros(len(ranked), np.int64)
        for c in np.unique(pred[ranked]):
            mine = pred[ranked] == c
            rank_in_class[mine] = np.arange(int(mine.sum()))
        sure = ranked[rank_in_class < class_limit]
    out[pool[sure]] = pred[sure]
    return out


def pseudo_stats(pseudo: np.ndarray, true: np.ndarray, unlabelled: int, num_classes: int) -> dict:
    """Count, accuracy and coverage of the pseudo-labels, their per-class counts and a
    true-vs-pseudo confusion matrix. `unlabelled`: how many images could have one."""
    has = pseudo != UNLABELLED
    n = int(has.sum())
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (true[has], pseudo[has]), 1)
    return {"pseudo_labels": n,
            "pseudo_label_accuracy": float(confusion.trace() / n) if n else None,
            "pseudo_label_coverage": n / max(1, unlabelled),
            "pseudo_label_counts": confusion.sum(0),
            "pseudo_label_confusion": confusion}
