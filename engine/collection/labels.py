"""Names for the map's clusters from the embedder's text side: the ImageNet class names whose
text embeddings lie nearest each cluster's centre.

ConSE's image vectors are weighted means of class-name embeddings, so its centres sit among
the names that describe them; a CLIP model embeds "a photo of a NAME" with its text tower
(computed once per model, cached).
"""
from __future__ import annotations

import hashlib
import re

import numpy as np

from engine.jobs import Progress
from engine.paths import cache_dir, ensure
from engine.resources import labels

BATCH = 100


def short_names() -> list[str]:
    """'tabby, tabby cat' -> 'tabby': the first synonym of each ImageNet class."""
    return [name.split(",")[0].strip() for name in labels("imagenet1k")]


def label_bank(embedder):
    """(names, K x D normalised text embeddings) in the embedder's space; a generator (progress)."""
    names = short_names()
    own = getattr(embedder.model, "label_emb", None)  # ConSE: its class-name embeddings, already built
    if own is not None:
        bank = own.detach().float().cpu().numpy()
    else:
        bank = yield from _encoded(embedder, [f"a photo of a {n}" for n in names])
    bank = bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-8)
    return names, bank.astype(np.float32)


def _encoded(embedder, texts: list[str]):
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    slug = re.sub(r"[^a-z0-9]+", "-", embedder.model_id.lower())[:40]
    path = ensure(cache_dir() / "collection") / f"names-{slug}-{key}.npy"
    if path.is_file():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
    parts = []
    for start in range(0, len(texts), BATCH):
        parts.append(embedder.encode_texts(texts[start:start + BATCH]))
        yield Progress(start / len(texts), "naming clusters: embedding class names")
    bank = np.concatenate(parts).astype(np.float32)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, bank)
    tmp.replace(path)
    return bank


def cluster_names(centres: np.ndarray, names: list[str], bank: np.ndarray, per_cluster: int = 2) -> list[str]:
    """A short label per centre: its `per_cluster` nearest names, joined by ' · '. A name goes to
    one cluster only (the clearest claims first), so two neighbouring clusters read differently."""
    c = centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-8)
    sims = c @ bank.T  # k x K
    out = [""] * len(c)
    used: set[str] = set()
    for k in np.argsort(-sims.max(axis=1)):
        picked: list[str] = []
        for i in np.argsort(-sims[k]):
            if names[i] not in used and names[i] not in picked:
                picked.append(names[i])
            if len(picked) == per_cluster:
                break
        used.update(picked)
        out[k] = " · ".join(picked)
    return out
