"""CLIP text towers in ONNX Runtime, so a text query with a CLIP model need not import torch.

The index job exports an open_clip model's text tower next to its image tower (once per
weights file, engine/runtime/onnx_cache.py), with a sidecar JSON that says the tokenizer is
CLIP's BPE with its context length; `main.py search --no-index` then embeds the query with
ONNX Runtime and engine/runtime/clip_tokenizer.py. Models whose open_clip tokenizer is not
that BPE (SigLIP, HF tokenizers) are not exported and stay on the engine's PyTorch path.

Nothing here imports torch except `export_text`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.runtime import onnx_cache


def export_path(name: str, weights: Path) -> Path:
    return onnx_cache.folder() / f"{name}-text-{onnx_cache.weights_key(weights)}.onnx"


def sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def ready(path: Path) -> bool:
    return path.is_file() and sidecar(path).is_file()


def export_text(model, tokenizer, dest: Path) -> Path | None:
    """Export model.encode_text (token ids -> features) once; None where `tokenizer` is not CLIP's
    plain BPE (the torch-free tokenizer could not reproduce it)."""
    import torch
    from open_clip.tokenizer import SimpleTokenizer

    if type(tokenizer) is not SimpleTokenizer or tokenizer.reduction_fn is not None \
            or tokenizer.clean_fn.__name__ != "_clean_lower":
        return None
    if ready(dest):
        return dest

    class TextOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, tokens):
            return self.model.encode_text(tokens)

    length = int(tokenizer.context_length)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused MHA kernel has no ONNX export
    try:
        onnx_cache.export_module(TextOnly(), (torch.as_tensor(tokenizer(["a photo", "of a cat"]), dtype=torch.long),),
                                 dest, ["tokens"], ["features"], {"tokens": {0: "batch"}, "features": {0: "batch"}})
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    onnx_cache.write_once(sidecar(dest), lambda tmp: tmp.write_text(json.dumps({"context_length": length})))
    return dest


class ClipTextOnnx:
    """encode(texts) -> (N, D) float32 unit rows, as the PyTorch text tower + normalise give."""

    def __init__(self, path: Path, threads: int | None = None):
        from engine.runtime.clip_tokenizer import ClipTokenizer

        meta = json.loads(sidecar(path).read_text())
        self.tokenizer = ClipTokenizer(context_length=int(meta["context_length"]))
        self.session = onnx_cache.session(path, threads)

    def encode(self, texts: list[str]) -> np.ndarray:
        (out,) = self.session.run(None, {"tokens": self.tokenizer(list(texts))})
        out = out.astype(np.float32, copy=False)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
