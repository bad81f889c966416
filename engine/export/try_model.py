"""The Train panel's "Test your model": one image through a trained classifier, or through its
exported ONNX file, with the prediction, its confidence and (for a ViT) where it looked.

A run goes through the same code as the Classify and Attention panels (attention rollout for
the top class). An ONNX file goes through onnxruntime alone, with the preprocessing and labels
its JSON sidecar names, so a user sees the exported file itself answer; it needs no torch.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.classify import Prediction, _top_k
from engine.domain_check import DomainWarning
from engine.errors import ExportError
from engine.jobs import Progress

TOP_K = 5


@dataclass(frozen=True)
class TryResult:
    path: str
    source: str  # "run" or "onnx"
    model: str  # the run's model name, or the ONNX file's name
    top: tuple[Prediction, ...]
    image: np.ndarray  # (H, W, 3) uint8: what the model sees, scaled up for display
    overlay: np.ndarray | None  # the same with the attention rollout over it (ViTs only)
    note: str  # one line on what is shown
    seconds: float
    domain_warning: DomainWarning | None = None


def try_model_job(ctx, path: str, model_id: str | None = None, onnx: str | None = None, top_k: int = TOP_K):
    """Exactly one of `model_id` (a catalogue classifier, e.g. a run's "run-...") and `onnx`."""
    if (model_id is None) == (onnx is None):
        raise ExportError("test a model: give either a trained model or an ONNX file")
    yield Progress(None, "predicting")
    if onnx is not None:
        return onnx_predict(path, onnx, top_k)
    return (yield from _run_predict(ctx, path, model_id, top_k))


def _run_predict(ctx, path: str, model_id: str, top_k: int):
    from engine import catalogue
    from engine.attention.jobs import display_crop
    from engine.attention.overlay import overlay
    from engine.classify import classify_image
    from engine.images import open_image

    t0 = time.perf_counter()
    entry = catalogue.get(model_id)
    if "attention" in entry.panels:  # a ViT: rollout for the top class, with the same top-k
        from engine.attention.jobs import attention_job

        res = yield from attention_job(ctx, path, model_id, method="rollout", top_k=top_k)
        return TryResult(str(path), "run", entry.name, res.top, res.image, overlay(res.image, res.maps[0].values),
                         "attention rollout: where the [CLS] token gathered its evidence, all blocks together",
                         time.perf_counter() - t0, res.domain_warning)
    res = classify_image(ctx, path, model_id, top_k, want_preview=False)
    image, _ = display_crop(open_image(path), entry.preprocess)
    return TryResult(str(path), "run", entry.name, res.top, image, None,
                     "no attention map: this model's attention is not exposed (a probe or fine-tune head)",
                     time.perf_counter() - t0, res.domain_warning)


def read_sidecar(onnx: str) -> dict:
    """The JSON written beside an exported graph, with a one-line reason when it is unusable."""
    side = Path(onnx).with_suffix(".json")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportError(f"{Path(onnx).name}: no {side.name} beside it (export it with Patchwork, which "
                          "writes the labels and preprocessing there)") from None
    except (OSError, ValueError) as exc:
        raise ExportError(f"{side}: unreadable ({exc})") from None
    if meta.get("format") != "patchwork-onnx/1" or not isinstance(meta.get("preprocess"), dict):
        raise ExportError(f"{side}: not a Patchwork export sidecar")
    return meta


def onnx_predict(path: str, onnx: str, top_k: int = TOP_K) -> TryResult:
    """The exported classifier's top-k for one image, through onnxruntime (no torch)."""
    import onnxruntime as ort

    from engine.attention.jobs import display_crop
    from engine.catalogue.entry import Preprocess
    from engine.images import open_image
    from engine.preprocess import to_input

    t0 = time.perf_counter()
    meta = read_sidecar(onnx)
    labels = meta.get("labels")
    if meta.get("family") != "classifier" or not labels:
        raise ExportError(f"{Path(onnx).name} is a {meta.get('family')} export: it gives embeddings, not classes, "
                          "so there is nothing to predict; test a classifier's export")
    fields = Preprocess.__dataclass_fields__
    pp = Preprocess(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["preprocess"].items() if k in fields})
    img = open_image(path, draft=(pp.resize, pp.resize))
    try:
        session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors (not ONNX, truncated), as one line
        raise ExportError(f"{Path(onnx).name}: onnxruntime cannot load it ({str(exc).splitlines()[0][:200]})") from None
    (logits,) = session.run(None, {session.get_inputs()[0].name: to_input(img, pp)[None]})
    logits = logits[0].astype(np.float64)
    if logits.shape[0] != len(labels):
        raise ExportError(f"{Path(onnx).name} gives {logits.shape[0]} scores but its sidecar names {len(labels)} classes")
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    image, _ = display_crop(img, pp)
    return TryResult(str(path), "onnx", Path(onnx).name, _top_k(probs, tuple(labels), top_k), image, None,
                     f"onnxruntime {ort.__version__} on {Path(onnx).name}, preprocessing from its sidecar; "
                     "attention maps need the PyTorch run", time.perf_counter() - t0)
