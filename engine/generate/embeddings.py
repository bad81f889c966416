"""CLIP embeddings of Fashion-MNIST, computed once per CLIP model and cached on disk.

The prior learns to map text embeddings to these image embeddings, the decoder learns to
invert them, and the Generate panel shows the training images nearest to an intermediate
embedding. The cache key is the SHA-256 of the CLIP weights, so retraining invalidates it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from engine.jobs import Progress
from engine import npy_cache
from engine.paths import cache_dir, ensure


def weights_key(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def load_clip(model_id: str):
    """(model on the CPU, catalogue entry, weights path) for a CLIP/LiT catalogue entry."""
    from engine.catalogue import get
    from engine.catalogue.load import build_model
    from engine.catalogue.locate import local_path
    from engine.errors import ModelError

    entry = get(model_id)
    if entry.family != "clip" or not hasattr(entry, "preprocess"):
        raise ModelError(f"{entry.name} is not a CLIP model")
    path = local_path(entry)
    return build_model(entry), entry, path


def normalise_images(x_uint8, mean: float, std: float):
    """(N, H, W) or (N, 1, H, W) uint8 tensor -> (N, 1, H, W) float, the CLIP tower's input."""
    x = x_uint8.float() / 255.0
    if x.ndim == 3:
        x = x[:, None]  # N x 1 x H x W
    return (x - mean) / std


def embed_images(model, images: np.ndarray, mean: float, std: float, device: str = "cpu", chunk: int = 500):
    """Generator over chunks (yields Progress); returns (N, D) float32 unit-norm image embeddings."""
    import torch

    out = []
    n = len(images)
    for start in range(0, n, chunk):
        with torch.inference_mode():
            x = normalise_images(torch.from_numpy(np.ascontiguousarray(images[start:start + chunk])).to(device),
                                 mean, std)
            out.append(model.encode_image(x).float().cpu().numpy())
        done = min(n, start + chunk)
        yield Progress(done / max(1, n), f"CLIP image embeddings {done}/{n}", done, n)
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


def cached_image_embeddings(model, entry, weights_path, images: np.ndarray, name: str, device: str = "cpu"):
    """embed_images, cached under cache_dir()/unclip/<weights key>-<name>-<N>.npy."""
    pp = entry.preprocess
    path = ensure(cache_dir() / "unclip") / f"{weights_key(weights_path)}-{name}-{len(images)}.npy"
    emb = npy_cache.load(path, len(images))
    if emb is not None:
        return emb
    emb = yield from embed_images(model, images, float(pp.mean[0]), float(pp.std[0]), device)
    npy_cache.save(path, emb)
    return emb


def embed_texts(model, texts: list[str], chunk: int = 256) -> np.ndarray:
    """(N, D) float32 unit-norm CLIP text embeddings."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), chunk):
            out.append(model.encode_text(list(texts[i:i + chunk])).float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def cached_text_embeddings(model, weights_path, texts: list[str], name: str) -> np.ndarray:
    """embed_texts, cached like the image embeddings (keyed by the weights and the texts)."""
    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:12]
    path = ensure(cache_dir() / "unclip") / f"{weights_key(weights_path)}-{name}-{digest}.npy"
    if path.is_file():
        try:
            emb = np.load(path, allow_pickle=False)
            if emb.shape[0] == len(texts):
                return emb
        except (OSError, ValueError):
            pass
    emb = embed_texts(model, texts)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    tmp.replace(path)
    return emb


def class_prompt_embeddings(model) -> np.ndarray:
    """(10, D): each Fashion-MNIST class as the renormalised mean of its prompt embeddings
    ("a photo of a sneaker.", "a photo of a running shoe.", ...), as in zero-shot CLIP."""
    from engine.data import captions

    rows = []
    for c in range(len(captions.PARAPHRASES)):
        e = embed_texts(model, list(captions.prompts(c))).mean(0)
        rows.append(e / max(1e-12, float(np.linalg.norm(e))))
    return np.stack(rows).astype(np.float32)
