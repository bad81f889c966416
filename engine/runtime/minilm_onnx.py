"""all-MiniLM-L6-v2 without torch: ONNX Runtime + the `tokenizers` package.

A text query needs only the sentence encoder, and `import torch` alone costs a command-line
query about 2 s. So the BERT body is exported to ONNX once (with torch, on first use), cached by
the weights' SHA-256, and queries then run it with onnxruntime; mean pooling over the attention
mask and L2 normalisation (sentence-transformers' Pooling + Normalize modules) are numpy.
tests/engine/test_minilm_onnx.py checks cosine >= 0.9999 against the PyTorch encoder.

Nothing here imports torch except `export`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.errors import ModelError
from engine.runtime import onnx_cache

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_folder() -> Path:
    from engine.models.text import minilm_path

    return Path(minilm_path())


def weights_key(folder: Path) -> str:
    """A short SHA-256 of the weights file: a new package version gets a new export."""
    return onnx_cache.weights_key(folder / "model.safetensors")


def onnx_path(folder: Path | None = None) -> Path:
    folder = folder or model_folder()
    return onnx_cache.folder() / f"minilm-l6-v2-{weights_key(folder)}.onnx"


def export(folder: Path | None = None) -> Path:
    """Export the BERT body (token ids -> last hidden state) once; returns the cached file."""
    folder = folder or model_folder()
    dest = onnx_path(folder)
    if dest.is_file():
        return dest
    import torch
    import transformers

    bert = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True).eval()

    class Body(torch.nn.Module):  # positional inputs by name: BertModel.forward's order changes
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones(2, 8, dtype=torch.long)
    axes = {n: {0: "batch", 1: "tokens"} for n in (*_INPUTS, "last_hidden_state")}
    return onnx_cache.export_module(Body(), (ids, torch.ones_like(ids), torch.zeros_like(ids)), dest,
                                    list(_INPUTS), ["last_hidden_state"], axes)


class MiniLMOnnx:
    """encode(texts) -> (N, 384) float32, L2-normalised, as SentenceTransformer.encode gives."""

    def __init__(self, folder: Path | None = None, path: Path | None = None, threads: int | None = None):
        from tokenizers import Tokenizer

        folder = folder or model_folder()
        path = path or onnx_path(folder)
        if not path.is_file():
            raise ModelError(f"{path}: the ONNX export of MiniLM is not there yet (it is made on first use)")
        self.max_len = 256
        cfg = folder / "sentence_bert_config.json"
        if cfg.is_file():
            self.max_len = int(json.loads(cfg.read_text(encoding="utf-8")).get("max_seq_length", 256))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_len)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.session = onnx_cache.session(path, threads)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), np.float32)
        batch = self.tokenizer.encode_batch(list(texts))
        ids = np.asarray([b.ids for b in batch], dtype=np.int64)
        mask = np.asarray([b.attention_mask for b in batch], dtype=np.int64)
        types = np.asarray([b.type_ids for b in batch], dtype=np.int64)
        (hidden,) = self.session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask,
                                                              "token_type_ids": types})
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)  # sentence-transformers' mean pooling
        return (pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)
