"""ConSE (Norouzi et al. 2014): zero-shot image embeddings from a classifier and a text encoder.

An image's embedding is the probability-weighted mean of the text embeddings of its
top-T class names; a text query is embedded by the same text encoder. With
EfficientNet-Lite0 (ImageNet) and MiniLM this gives real text search offline, over the
1000 ImageNet concepts.
"""
from __future__ import annotations

import hashlib

import numpy as np

from engine.models.registry import register_builder
from engine import npy_cache
from engine.paths import cache_dir, ensure
from engine.resources import labels

TOP_T = 10


def label_texts() -> list[str]:
    """ImageNet class names as MiniLM reads them best: 'tabby, tabby cat' -> 'tabby cat, tabby'."""
    return [", ".join(reversed([s.strip() for s in d.split(",")][:3])) for d in labels("imagenet1k")]


def _label_embeddings(text_encoder, texts: list[str]) -> np.ndarray:
    """MiniLM embeddings of the class names, cached on disk (1000 sentences take seconds)."""
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = ensure(cache_dir() / "conse") / f"minilm-imagenet-{key}.npy"
    emb = npy_cache.load(path, len(texts))
    if emb is not None:
        return emb
    emb = np.asarray(text_encoder.encode(texts), dtype=np.float32)
    npy_cache.save(path, emb)
    return emb


@register_builder("conse")
def build_conse(entry, path=None):
    """Catalogue builder: EfficientNet-Lite0 + MiniLM as one module with encode_image/encode_text."""
    import torch

    from engine.catalogue import get
    from engine.catalogue.load import build_model

    classifier = build_model(get(entry.option("classifier", "efficientnet-lite0")))
    text = build_model(get(entry.option("text_encoder", "minilm-l6-v2")))

    class ConSE(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.classifier, self.text = classifier, text
            self.top_t = int(entry.option("top_t", str(TOP_T)))
            self.label_emb_np = _label_embeddings(text, label_texts())
            self.register_buffer("label_emb", torch.from_numpy(self.label_emb_np))

        @torch.inference_mode()
        def encode_image(self, x):
            return torch.from_numpy(self.from_logits(self.classifier(x).float().cpu().numpy())).to(x.device)

        def from_logits(self, logits: np.ndarray) -> np.ndarray:
            """The classifier's logits -> the photo's vector (also the ONNX tower's numpy post-step):
            the probability-weighted mean of its top-T class names' embeddings, unit length."""
            from engine.search.labelspace import softmax

            probs = softmax(logits.astype(np.float64))  # N x 1000
            idx = np.argsort(-probs, axis=-1, kind="stable")[:, :self.top_t]  # N x T
            p = np.take_along_axis(probs, idx, axis=-1)
            w = p / p.sum(-1, keepdims=True)
            emb = (w[..., None] * self.label_emb_np[idx]).sum(1)  # N x D
            emb /= np.maximum(np.linalg.norm(emb, axis=-1, keepdims=True), 1e-12)
            return emb.astype(np.float32)

        @torch.inference_mode()
        def encode_text(self, texts: list[str]):
            out = torch.as_tensor(np.asarray(self.text.encode(list(texts)), dtype=np.float32))
            return torch.nn.functional.normalize(out, dim=-1).to(self.label_emb.device)

    return ConSE().eval()
