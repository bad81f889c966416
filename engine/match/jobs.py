"""The "match" engine request: one image, a list of captions -> how well each matches.

    engine.submit("match", {"path": "shirt.png", "captions": ["a photo of a shirt.", ...],
                            "model_id": "fmnist-albef-tiny"})          -> MatchResult
    engine.submit("match_samples", {})                                 -> [(png path, caption)]

Align before fuse: the ITC similarity compares the two unimodal embeddings (cheap, as a
search index would); the ITM probability comes from the fusion encoder, where the caption's
tokens attend to the image patches. Per word, ALBEF's Grad-CAM: the gradient of the ITM
match score with respect to a fusion layer's cross-attention, its positive part times the
attention, averaged over heads; a word's map is the mean of its word pieces' rows. The maps
read the first fusion layer by default: ITM reads the fused [CLS] token, and in the last
layer the words' cross-attention rows can no longer reach it (their gradient is zero), which
is why ALBEF reads a middle layer.

ViLT models (family "vilt") have no separate embeddings, so no ITC: their captions get the
ITM probability only (itc_* None), each caption a full pass of the one transformer over its
words and the image patches. Their word maps are the same Grad-CAM on the text-to-patch
block of a layer's self-attention.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from engine.data.samples import fashion_mnist_samples
from engine.domain_check import DomainWarning, combine, image_warning, prompt_warning
from engine.errors import PatchworkError
from engine.jobs import Progress

DEFAULT_ALBEF = "fmnist-albef-tiny"
DISPLAY_SIZE = 196  # the 28-pixel input scaled up 7× for display and overlays
MAX_CAPTIONS = 32


@dataclass(frozen=True)
class CaptionMatch:
    text: str
    itc_similarity: float | None  # cosine of the unimodal embeddings, in [-1, 1] (None: ViLT has none)
    itc_probability: float | None  # softmax of similarity / temperature over the given captions
    itm_probability: float  # the fusion encoder's P(match)
    words: tuple[str, ...]
    word_maps: np.ndarray  # (n_words, gh, gw) float32: Grad-CAM per word, each divided by its peak
    caption_map: np.ndarray  # (gh, gw) float32: the whole caption's map (all word pieces), peak 1
    word_overlays: np.ndarray  # (n_words, S, S, 3) uint8: each word's map over the image
    caption_overlay: np.ndarray  # (S, S, 3) uint8


@dataclass(frozen=True)
class MatchResult:
    path: str
    model_id: str
    image: np.ndarray  # (S, S, 3) uint8: what the model sees, scaled up for display
    grid: tuple[int, int]
    captions: tuple[CaptionMatch, ...]
    layer: int  # the fusion layer whose cross-attention the maps read (0-based)
    seconds: float
    load_seconds: float = 0.0
    family: str = "albef"  # "vilt": ITM only, no ITC
    domain_warning: DomainWarning | None = None  # the image or the captions lie outside what the model knows


class MatchError(PatchworkError):
    """A match request that cannot be answered (no captions, too many...)."""


def _peak_normalised(m: np.ndarray) -> np.ndarray:
    peak = float(m.max()) if m.size else 0.0
    return (m / peak if peak > 0 else np.zeros_like(m)).astype(np.float32)


def word_spans(word_ids: list[int | None]) -> list[list[int]]:
    """Token positions of each word, in order ([CLS], [SEP] and padding have no word)."""
    spans: dict[int, list[int]] = {}
    for pos, w in enumerate(word_ids):
        if w is not None:
            spans.setdefault(w, []).append(pos)
    return [spans[w] for w in sorted(spans)]


def attention_gradcam(attn_module, model, text_embeds, text_mask, image_embeds):
    """ITM match probabilities (n,) and the Grad-CAM of `attn_module`'s attention (n, queries, keys):
    the gradient of the match logit, its positive part times the attention, averaged over heads.

    image_embeds is made a leaf that needs a gradient, so the graph exists even when the
    weights are frozen."""
    import torch

    attn_module.save_attention = True
    try:
        with torch.enable_grad():
            image_embeds = image_embeds.detach().requires_grad_(True)
            logits = model.fuse(text_embeds.detach(), text_mask, image_embeds)  # (n, 2)
            logits[:, 1].sum().backward()
            attn, grad = attn_module.attention, attn_module.attention.grad  # (n, h, queries, keys)
            cam = (grad.clamp(min=0) * attn).mean(1)
        return logits.detach().softmax(-1)[:, 1], cam.detach()
    finally:
        attn_module.save_attention = False
        attn_module.attention = None


def itm_gradcam(model, image_embeds, text_embeds, text_mask, layer: int = 0):
    """ALBEF: ITM match probabilities (n,) and Grad-CAM rows (n, T, L) over the image patches
    from fusion layer `layer`'s cross-attention (image_embeds (n, 1+L, W))."""
    probs, cam = attention_gradcam(model.fusion[layer].cross_attn, model, text_embeds, text_mask, image_embeds)
    return probs, cam[:, :, 1:]  # patches only, not [CLS]


def vilt_gradcam(model, image, text, text_mask, layer: int = 0):
    """ViLT: ITM match probabilities (n,) and Grad-CAM rows (n, T, L): the text-to-patch block of
    layer `layer`'s self-attention over [text (T), patches (L)]."""
    probs, cam = attention_gradcam(model.layers[layer].attn, model, text, text_mask, image)
    T = text.shape[1]
    return probs, cam[:, :T, T:]


def _scores(model, family: str, x, captions: list[str], layer: int):
    """(ITC cosine (n,) or None, ITC softmax (n,) or None, ITM P(match) (n,), Grad-CAM (n, T, L),
    the tokenizer's encoding)."""
    import torch

    tokens, mask, batch = model.minilm_tokens(captions)
    n = len(captions)
    if family == "vilt":
        T = min(tokens.shape[1], model.config.max_text_len)  # longer captions: the first word pieces only
        with torch.no_grad():
            text, image = model.embed_text(tokens[:, :T]), model.embed_image(x)  # (n, T, W), (1, L, W)
        itm_prob, cam = vilt_gradcam(model, image.expand(n, -1, -1), text, mask[:, :T], layer)
        return None, None, itm_prob, cam, batch
    with torch.no_grad():
        image_embeds, image_feat = model.unimodal.image(x)  # (1, 1+L, W), (1, D)
        text_embeds, text_feat = model.unimodal.text_side(tokens, mask)
        sim = (image_feat @ text_feat.t())[0]  # (n,) cosine
        itc_prob = (sim / model.temp).softmax(0)
    itm_prob, cam = itm_gradcam(model, image_embeds.expand(n, -1, -1), text_embeds, mask, layer)
    return sim.tolist(), itc_prob.tolist(), itm_prob, cam, batch


def match_job(ctx, path: str, captions: list[str], model_id: str = DEFAULT_ALBEF, layer: int = 0):
    import torch

    from engine.attention.overlay import overlay
    from engine.catalogue import get
    from engine.catalogue.load import entry_of_family, timed_load
    from engine.images import open_image
    from engine.preprocess import to_input

    captions = [str(c).strip() for c in captions if str(c).strip()]
    if not captions:
        raise MatchError("type at least one caption (one per line)")
    if len(captions) > MAX_CAPTIONS:
        raise MatchError(f"at most {MAX_CAPTIONS} captions at a time ({len(captions)} given)")
    yield Progress(None, "matching")
    t0 = time.perf_counter()
    entry = get(model_id)
    if entry.family != "vilt":
        entry = entry_of_family(model_id, "albef", "an image-text fusion (ALBEF) model")
    pp = entry.preprocess
    img = open_image(path, draft=(pp.resize, pp.resize))  # a bad file fails before any model load
    model, load_seconds = timed_load(ctx, model_id)
    yield None
    n_layers = len(model.layers if entry.family == "vilt" else model.fusion)
    if not -n_layers <= layer < n_layers:
        raise MatchError(f"layer {layer} out of range: the model has {n_layers} fusion layers")
    x = torch.from_numpy(to_input(img, pp)).unsqueeze(0).to(ctx.device)  # (1, C, S, S) normalised
    sim, itc_prob, itm_prob, cam, batch = _scores(model, entry.family, x, captions, layer)
    n = len(captions)
    gh, gw = model.grid
    cam = cam.float().cpu().numpy().reshape(n, cam.shape[1], gh, gw)  # (n, T, gh, gw)

    c = x.shape[1]
    mean, std = np.array(pp.mean[:c]).reshape(c, 1, 1), np.array(pp.std[:c]).reshape(c, 1, 1)
    pixels = np.clip((x[0].cpu().numpy() * std + mean) * 255.0, 0, 255).round().astype(np.uint8)  # (C, S, S)
    base = np.repeat(pixels, 3, 0) if c == 1 else pixels
    scale = max(1, DISPLAY_SIZE // base.shape[-1])
    image = base.transpose(1, 2, 0).repeat(scale, 0).repeat(scale, 1)  # (S', S', 3)

    out = []
    for i, text in enumerate(captions):
        tok = batch.tokens(i)
        spans = word_spans(batch.word_ids(i)[:cam.shape[1]])  # ViLT: word pieces past max_text_len unread
        words = tuple(model._locked[0].tokenizer.convert_tokens_to_string([tok[p] for p in s]) for s in spans)
        maps = np.stack([_peak_normalised(cam[i, s].mean(0)) for s in spans]) if spans else \
            np.zeros((0, gh, gw), np.float32)
        whole = _peak_normalised(cam[i, [p for s in spans for p in s]].mean(0)) if spans else \
            np.zeros((gh, gw), np.float32)
        overlays = np.stack([overlay(image, m, smooth=False) for m in maps]) if spans else \
            np.zeros((0,) + image.shape, np.uint8)
        out.append(CaptionMatch(text=text, itc_similarity=sim and sim[i], itc_probability=itc_prob and itc_prob[i],
                                itm_probability=float(itm_prob[i]), words=words, word_maps=maps,
                                caption_map=whole, word_overlays=overlays,
                                caption_overlay=overlay(image, whole, smooth=False)))
    warning = combine(image_warning(entry, img), prompt_warning(entry, captions, "caption"))
    return MatchResult(path=str(path), model_id=model_id, image=image, grid=(gh, gw), captions=tuple(out),
                       layer=layer % n_layers, seconds=time.perf_counter() - t0 - load_seconds,
                       load_seconds=load_seconds, family=entry.family,
                       domain_warning=warning)


def match_samples_job(ctx, count: int = 10):
    return fashion_mnist_samples(count)
