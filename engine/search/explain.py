""""Why this result": a heat map over a search hit showing what made it match the query.

ConSE: a photo's embedding is a weighted mean of its top classes' text embeddings, so its
score for a text query splits into one contribution per class, p_c · (e_c · q). We name
the class that contributes most and draw Grad-CAM for it on EfficientNet-Lite0.
CLIP: gradient rollout of the image tower's attention for the query's text (its similarity
to the photo as the target), the same maps the Attention panel draws.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine import catalogue
from engine.attention.jobs import attention_job
from engine.attention.overlay import overlay
from engine.catalogue.load import load_model
from engine.models.registry import builder_name
from engine.errors import PatchworkError
from engine.images import open_image
from engine.jobs import Progress
from engine.preprocess import to_input
from engine.search.embedders import DEFAULT_SEARCH_MODEL, Embedder
from engine.search.query import parse_query, query_vector


@dataclass(frozen=True)
class Contribution:
    label: str
    prob: float  # the classifier's probability (renormalised over the top T)
    similarity: float  # the class name's cosine similarity to the query
    share: float  # prob · similarity: its part of the score


@dataclass(frozen=True)
class Explanation:
    path: str
    query: str
    summary: str  # one sentence for the user
    image: np.ndarray  # (H, W, 3) uint8: the crop the model sees, with the heat map over it
    plain: np.ndarray  # the same crop without the map
    contributions: tuple[Contribution, ...]  # ConSE only: the top classes and their shares


def _text_of(terms) -> str | None:
    texts = [t.value for t in terms if t.kind == "text" and t.weight > 0]
    return " ".join(texts) if texts else None


def explain_job(ctx, path: str, query: str, model_id: str = DEFAULT_SEARCH_MODEL, folder: str | None = None):
    terms = parse_query(query, base_dir=folder)
    entry = catalogue.get(model_id)
    label_space = builder_name(entry.builder) == "labelspace"
    if builder_name(entry.builder) == "conse" or label_space:
        yield Progress(None, "finding the classes behind the match")
        embedder = Embedder(ctx, model_id)
        q = query_vector(embedder, terms)
        contributions = (_labelspace_contributions if label_space else _conse_contributions)(ctx, embedder, path, q)
        best = max(contributions, key=lambda c: c.share)
        classifier_id = entry.option("classifier", "efficientnet-lite0")
        class_index = _class_index(classifier_id, best.label)
        res = yield from attention_job(ctx, path, classifier_id, method="gradcam", class_index=class_index)
        why = (f"a class that is {best.similarity:.0%} what the query asks for" if label_space
               else f"whose name is {best.similarity:.2f} similar to the query")
        summary = (f"Mostly because it looks like “{best.label}” (probability {best.prob:.0%}, {why}); "
                   "the map is Grad-CAM for that class.")
    else:
        text = _text_of(terms)
        if text is None:
            raise PatchworkError("“Why this result” explains text queries; this query has no positive text term")
        res = yield from attention_job(ctx, path, model_id, method="gradrollout", text=text)
        contributions = ()
        summary = f"Where the image tower attends for “{text}” (gradient rollout of its similarity)."
    m = res.maps[0].values
    return Explanation(path, query, summary, overlay(res.image, m, 0.55), res.image, tuple(contributions))


def _class_index(classifier_id: str, label: str) -> int:
    from engine.search.conse import label_texts

    if catalogue.get(classifier_id).labels != "imagenet1k":
        raise PatchworkError(f"{classifier_id} does not use ImageNet's classes; cannot explain this ConSE match")
    return label_texts().index(label)


def _labelspace_contributions(ctx, embedder: Embedder, path: str, q: np.ndarray) -> list[Contribution]:
    """The photo's top classes with their share p_c * m_c of the score (m: the query's membership)."""
    from engine.search.conse import label_texts

    img = open_image(path, draft=(embedder.preprocess.resize,) * 2)
    v = embedder.encode_images(to_input(img, embedder.preprocess)[None])[0]  # class probabilities
    texts = label_texts()
    top = np.argsort(-(v * q))[:10]
    return [Contribution(texts[int(i)], float(v[i]), float(q[i]), float(v[i] * q[i])) for i in top]


def _conse_contributions(ctx, embedder: Embedder, path: str, q: np.ndarray) -> list[Contribution]:
    """Each of the photo's top-T classes with its share p_c · (e_c · q) of the score."""
    import torch

    from engine.search.conse import label_texts

    model = load_model(ctx, embedder.model_id)
    img = open_image(path, draft=(embedder.preprocess.resize,) * 2)
    x = torch.from_numpy(to_input(img, embedder.preprocess)[None]).to(ctx.device)
    with torch.inference_mode():
        probs = model.classifier(x).float().softmax(-1)[0]
        p, idx = probs.topk(model.top_t)
        w = (p / p.sum()).cpu().numpy()
        emb = model.label_emb[idx].cpu().numpy()
    sims = emb @ q
    texts = label_texts()
    out = [Contribution(texts[int(i)], float(wi), float(s), float(wi * s)) for i, wi, s in zip(idx.tolist(), w, sims)]
    return sorted(out, key=lambda c: -c.share)
