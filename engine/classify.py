"""Image classification jobs: decode, preprocess with the model's own config, top-k."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from engine import catalogue
from engine.catalogue.load import timed_load
from engine.domain_check import DomainWarning, image_warning
from engine.errors import BadImageError, ModelError
from engine.images import open_image, preview_array
from engine.jobs import Partial, Progress
from engine.preprocess import to_input
from engine.resources import labels, short_label


PREVIEW_SIDE = 1024  # long side of the display copy sent to the GUI


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str  # short name, e.g. "tabby"
    description: str  # the full synonym list, e.g. "tabby, tabby cat"
    prob: float


@dataclass(frozen=True)
class ClassifyResult:
    path: str
    model_id: str
    top: tuple[Prediction, ...]
    image_size: tuple[int, int]
    seconds: float  # decode + preprocess + forward
    load_seconds: float = 0.0  # model load, when this request had to load it
    preview: np.ndarray | None = None  # (H, W, 3) uint8, EXIF-oriented
    domain_warning: DomainWarning | None = None  # the image lies outside what the model knows


@dataclass(frozen=True)
class BatchResult:
    results: tuple[ClassifyResult, ...]
    failures: tuple[tuple[str, str], ...]  # (path, reason) for every skipped file


def preprocess(img, pp: catalogue.Preprocess):
    """PIL RGB image -> (1, C, S, S) float tensor with the model's own preprocessing."""
    import torch

    return torch.from_numpy(to_input(img, pp)).unsqueeze(0)


def _top_k(probs: np.ndarray, names: tuple[str, ...], k: int) -> tuple[Prediction, ...]:
    order = np.argsort(-probs)[:k]
    return tuple(Prediction(int(i), short_label(names[i]), names[i], float(probs[i])) for i in order)


def classify_image(ctx, path: str, model_id: str, top_k: int, want_preview: bool) -> ClassifyResult:
    import torch

    t0 = time.perf_counter()
    entry = catalogue.get(model_id)
    if "classify" not in entry.panels:
        raise ModelError(f"{entry.name} ({model_id}) is a {entry.family} model, not a classifier; "
                         "see `python main.py models` for the classifiers")
    pp = entry.preprocess
    # JPEG draft decoding at the size we need: the model's input, or the preview's.
    need = max(pp.resize, PREVIEW_SIDE if want_preview else 0)
    img = open_image(path, draft=(need, need))  # bad files fail before any model load
    model, load_seconds = timed_load(ctx, model_id)
    x = preprocess(img, pp).to(ctx.device)
    with torch.inference_mode():
        logits = model(x).float()[0]
        probs = logits.softmax(-1).cpu().numpy()
    logits = logits.cpu().numpy()
    return ClassifyResult(
        path=str(path), model_id=model_id, top=_top_k(probs, labels(entry.labels), top_k),
        image_size=img.size, seconds=time.perf_counter() - t0 - load_seconds, load_seconds=load_seconds,
        preview=preview_array(img, PREVIEW_SIDE) if want_preview else None,
        domain_warning=image_warning(entry, img, logits=logits))


def classify_job(ctx, path: str, model_id: str = catalogue.DEFAULT_CLASSIFIER, top_k: int = 5,
                 preview: bool = True):
    """Interactive: one image. Raises BadImageError for files that are not usable images."""
    yield Progress(None, "classifying")
    return classify_image(ctx, path, model_id, top_k, preview)


def classify_batch_job(ctx, paths: list[str], model_id: str = catalogue.DEFAULT_CLASSIFIER, top_k: int = 5):
    """Background: many images, one per step. Bad files are listed, never fatal."""
    results, failures = [], []
    total = len(paths)
    for i, path in enumerate(paths):
        try:
            r = classify_image(ctx, path, model_id, top_k, want_preview=False)
            results.append(r)
            yield Partial(r)
        except BadImageError as exc:
            failures.append((exc.path, exc.reason))
        yield Progress((i + 1) / total, f"{i + 1}/{total} images", i + 1, total)
    return BatchResult(tuple(results), tuple(failures))
