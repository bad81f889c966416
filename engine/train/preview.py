"""A look at a dataset before training: sample images with their labels or captions and,
for self-supervised recipes, the two augmented views of each (what MoCo will compare).

Everything returned is plain data: uint8 arrays, strings, counts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import PatchworkError
from engine.jobs import Progress
from engine.train.data_prep import FASHION_MNIST_NAMES, decode_with_progress

KINDS = ("fashion-mnist", "classes", "unlabelled", "captions")


@dataclass(frozen=True)
class DatasetPreview:
    dataset: str
    kind: str  # one of KINDS
    summary: str  # one line: how many images, classes, skipped files
    images: list = field(default_factory=list)  # (H, W) or (H, W, 3) uint8 arrays
    texts: list = field(default_factory=list)  # class name or caption per image ("" when none)
    views: list = field(default_factory=list)  # [(view 1, view 2)] per image for SSL recipes, else []
    classes: tuple = ()
    total: int = 0
    skipped: int = 0
    recipe: str | None = None


def detect_kind(dataset: str) -> str:
    """What a dataset spec is: Fashion-MNIST, a CSV of captions, or a folder (classes /
    captions beside images / unlabelled)."""
    if dataset.lower() in FASHION_MNIST_NAMES:
        return "fashion-mnist"
    p = Path(dataset)
    if p.is_file() and p.suffix.lower() == ".csv":
        return "captions"
    if not p.is_dir():
        raise PatchworkError(f"{dataset}: neither Fashion-MNIST nor an existing folder or CSV")
    from engine.images import is_image_path

    subdirs = [d for d in p.iterdir() if d.is_dir() and not d.name.startswith((".", "__"))]
    if len(subdirs) >= 2 and any(is_image_path(f) for d in subdirs for f in d.iterdir() if f.is_file()):
        return "classes"
    images = [f for f in p.rglob("*") if f.is_file() and is_image_path(f)]
    if images and sum(f.with_suffix(".txt").is_file() for f in images[:50]) >= max(1, len(images[:50]) // 2):
        return "captions"
    return "unlabelled"


def preview_job(ctx, dataset: str, kind: str = "auto", recipe: str | None = None, config: dict | None = None,
                count: int = 8, seed: int = 0):
    """Generator job: a DatasetPreview of `count` images drawn with `seed`."""
    config = dict(config or {})
    kind = detect_kind(dataset) if kind in ("auto", "", None) else kind
    if kind not in KINDS:
        raise PatchworkError(f"unknown dataset kind {kind!r}; choose one of {', '.join(KINDS)}")
    rng = np.random.default_rng([int(seed), 0x9E1])
    yield Progress(None, "reading the dataset")
    if kind == "fashion-mnist":
        from engine.data import captions, fashion_mnist

        data = fashion_mnist.load_fashion_mnist("train")
        pick = np.sort(rng.choice(len(data), size=min(count, len(data)), replace=False))
        images = [data.images[i] for i in pick]
        if recipe in ("clip", "lit"):
            texts = [captions.sample_caption(int(data.labels[i]), seed, int(i)) for i in pick]
        else:
            texts = [data.classes[int(data.labels[i])] for i in pick]
        summary = f"Fashion-MNIST: {len(data):,} training images, 28×28 grayscale, {len(data.classes)} classes"
        classes, total, skipped = data.classes, len(data), 0
    else:
        images, texts, classes, total, skipped, summary = yield from _folder_sample(
            dataset, kind, rng, count, int(config.get("image_size") or 0), bool(config.get("grayscale", False)))
    views = []
    cls = _recipe_class(recipe)
    if cls is not None and hasattr(cls, "preview_pairs") and images:
        stack = np.stack([im[None] if im.ndim == 2 else im.transpose(2, 0, 1) for im in images])  # (N, C, H, W)
        views = cls.preview_pairs(stack, config, seed)
    return DatasetPreview(dataset=dataset, kind=kind, summary=summary, images=images, texts=texts, views=views,
                          classes=tuple(classes), total=total, skipped=skipped, recipe=recipe)


def _recipe_class(recipe: str | None):
    if not recipe:
        return None
    from engine.train.recipes import recipe_class

    try:
        return recipe_class(recipe)
    except Exception:  # noqa: BLE001 - a recipe that does not import just has no views
        return None


def _folder_sample(dataset: str, kind: str, rng, count: int, size: int, grayscale: bool):
    from engine.data.folders import FolderScan, scan_captioned, scan_class_folders, scan_unlabelled

    scan = {"classes": scan_class_folders, "unlabelled": scan_unlabelled, "captions": scan_captioned}[kind](dataset)
    n = len(scan.items)
    pick = np.sort(rng.choice(n, size=min(count, n), replace=False))
    sub = FolderScan(scan.kind, scan.root, [scan.items[i] for i in pick], scan.classes, [])
    data = yield from decode_with_progress(sub, size or 64, grayscale, label="decoding")
    images = list(data.images)
    if kind == "classes":
        texts = [scan.classes[int(y)] for y in data.labels]
        what = f"images in {len(scan.classes)} classes ({', '.join(scan.classes[:6])}" \
               f"{'…' if len(scan.classes) > 6 else ''})"
    elif kind == "captions":
        texts = [c or "" for c in data.captions]
        what = "image-caption pairs"
    else:
        texts = [Path(p).name for p in data.paths]
        what = "unlabelled images"
    skipped = len(scan.skipped)
    summary = f"{Path(dataset).name}: {n:,} {what}" + (f" · {skipped} file(s) skipped" if skipped else "")
    return images, texts, scan.classes, n, skipped, summary
