"""The "attention" engine job: one image, one model, one method -> maps as numpy.

    engine.submit("attention", {"path": "coffee.png", "model_id": "efficientnet-lite0",
                                "method": "gradcam", "class_index": 967})   -> AttentionResult

The expensive part (decode, forward on the capturing path, a backward per class) is
cached for the last few (image, model) pairs, so changing the layer, head, clicked patch,
discard ratio or class re-renders in milliseconds on the engine thread; the panel only
draws what comes back.
"""
from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from engine import catalogue
from engine.attention import METHODS, AttentionError
from engine.attention import maths
from engine.attention.adapters import Spec
from engine.classify import Prediction
from engine.domain_check import DomainWarning, image_warning
from engine.jobs import Progress

#: Display copy of what the model sees: at least this many pixels a side (tiny inputs are
#: scaled up by whole pixels), at most DISPLAY_MAX.
DISPLAY_MIN, DISPLAY_MAX = 224, 448
_CACHE: OrderedDict = OrderedDict()  # (path, mtime, size, model id, device) -> _Entry
CACHE_SIZE = 2
GRAD_TARGETS_KEPT = 3  # per cached image: gradients for the last few classes


@dataclass(frozen=True)
class AttentionMap:
    title: str  # "head 3", "rollout", "Grad-CAM · espresso", ...
    values: np.ndarray  # (h, w) float32 in [0, 1]: the map divided by its peak
    peak: float  # the peak before scaling (an attention share, a relevance, a CAM value)


@dataclass(frozen=True)
class AttentionResult:
    path: str
    model_id: str
    method: str
    maps: tuple[AttentionMap, ...]  # one, or one per head ("all heads")
    spec: Spec
    token_view: str
    layer: int | None  # 0-based block the map reads (None: all layers, e.g. rollout; a CNN)
    head: int | None  # 0-based head, None when the heads were fused (or for CAMs)
    fusion: str
    query: int | None  # 0-based row-major patch whose row is shown; None: the [CLS] row
    discard_ratio: float
    class_index: int | None  # the target of class-specific methods
    class_label: str  # its name, or the CLIP text
    top: tuple[Prediction, ...]  # the model's top-k (empty for embedding models)
    image: np.ndarray  # (H, W, 3) uint8: the centre crop the model sees, for display
    crop_box: tuple[float, float, float, float]  # that crop in the decoded image: left, top, right, bottom
    image_size: tuple[int, int]  # decoded image (W, H)
    note: str  # one line on how to read this map
    seconds: float
    load_seconds: float = 0.0
    domain_warning: DomainWarning | None = None  # the image lies outside what the model knows

    @property
    def grid(self) -> tuple[int, int]:
        return self.spec.grid


@dataclass
class _Entry:
    captured: object  # compute.Captured (numpy only: the model stays in the model cache alone)
    x: object  # the (1, C, S, S) input tensor, on the CPU
    image: np.ndarray
    crop_box: tuple[float, float, float, float]
    image_size: tuple[int, int]
    domain_warning: DomainWarning | None = None


def crop_geometry(size: tuple[int, int], pp) -> tuple[tuple[int, int], tuple[float, float, float, float]]:
    """Where engine.preprocess.to_input's centre crop lies: (resized W, H), and the crop box
    (left, top, right, bottom) in the original image's pixels."""
    w, h = size
    scale = pp.resize / min(w, h)
    rw, rh = max(pp.input_size, round(w * scale)), max(pp.input_size, round(h * scale))
    left, top = (rw - pp.input_size) // 2, (rh - pp.input_size) // 2
    sx, sy = rw / w, rh / h
    return (rw, rh), (left / sx, top / sy, (left + pp.input_size) / sx, (top + pp.input_size) / sy)


def display_crop(img, pp) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The model's view of `img` for display: (H, W, 3) uint8 and its crop box."""
    from PIL import Image

    from engine.preprocess import _RESAMPLE

    (rw, rh), box = crop_geometry(img.size, pp)
    src = img.convert("L").convert("RGB") if pp.grayscale else img
    s = pp.input_size
    if s < DISPLAY_MIN:  # what the model sees, pixel for pixel, scaled up by a whole factor
        small = src.resize((rw, rh), _RESAMPLE[pp.interpolation])
        left, top = (rw - s) // 2, (rh - s) // 2
        small = small.crop((left, top, left + s, top + s))
        k = -(-DISPLAY_MIN // s)
        out = small.resize((s * k, s * k), Image.Resampling.NEAREST)
    else:
        side = min(DISPLAY_MAX, max(s, round(box[2] - box[0])))
        out = src.resize((side, side), Image.Resampling.LANCZOS, box=box)
    return np.ascontiguousarray(np.asarray(out.convert("RGB"), dtype=np.uint8)), box


def _cache_key(path: str, model_id: str, device: str):
    from engine.errors import BadImageError

    try:
        st = os.stat(path)
    except OSError as exc:  # open_image would say the same; the cache key is looked at first
        raise BadImageError(path, "no such file" if isinstance(exc, FileNotFoundError)
                            else f"unreadable ({exc.strerror or exc})") from None
    return (os.path.abspath(path), st.st_mtime_ns, st.st_size, model_id, device)


def clear_cache() -> None:
    _CACHE.clear()


def _prepare(ctx, path: str, model_id: str):
    """Decode, load, capture: the cached part. Yields progress; returns (_Entry, load seconds)."""
    import torch

    from engine.attention.adapters import adapt
    from engine.attention.compute import capture
    from engine.catalogue.load import timed_load
    from engine.images import open_image
    from engine.preprocess import to_input

    key = _cache_key(path, model_id, ctx.device)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key], 0.0
    entry = catalogue.get(model_id)
    pp = entry.preprocess
    img = open_image(path, draft=(pp.resize, pp.resize))  # bad files fail before any model load
    model, load_seconds = timed_load(ctx, model_id)
    adapter = adapt(model, pp.input_size)
    yield Progress(None, "capturing attention")
    x = torch.from_numpy(to_input(img, pp)).unsqueeze(0).to(ctx.device)  # (1, C, S, S)
    if x.shape[1] != adapter.spec.in_chans or tuple(x.shape[-2:]) != adapter.spec.img_size:
        raise AttentionError(f"{entry.name}: its preprocessing gives {x.shape[1]}×{x.shape[-1]} px input, "
                             f"the model expects {adapter.spec.in_chans}×{adapter.spec.img_size[0]} px")
    captured = capture(adapter, x)
    image, box = display_crop(img, pp)
    warning = image_warning(entry, img, logits=captured.scores if adapter.spec.has_classes else None)
    e = _Entry(captured, x.cpu(), image, box, img.size, warning)
    _CACHE[key] = e
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return e, load_seconds


def _class_names(entry, n: int) -> tuple[str, ...]:
    from engine.resources import labels

    if entry.labels:
        names = labels(entry.labels)
        if len(names) == n:
            return names
    return tuple(f"class {i}" for i in range(n))


def _top(scores: np.ndarray, names, k: int) -> tuple[Prediction, ...]:
    from engine.resources import short_label

    z = scores.astype(np.float64) - scores.max()
    probs = np.exp(z) / np.exp(z).sum()
    order = np.argsort(-probs)[:k]
    return tuple(Prediction(int(i), short_label(names[i]), names[i], float(probs[i])) for i in order)


def _clip_text_target(ctx, entry, model, text: str):
    """score(embedding) = cosine similarity to the text's CLIP embedding."""
    import open_clip
    import torch
    import torch.nn.functional as F

    tokenizer = open_clip.get_tokenizer(entry.arch)
    with torch.no_grad():
        t = F.normalize(model.encode_text(tokenizer([text]).to(ctx.device)).float(), dim=-1)  # (1, E)
    return lambda emb: F.cosine_similarity(emb.float(), t)[0]


def attention_job(ctx, path: str, model_id: str, method: str = "raw", layer: int | None = None,
                  head: int | None = None, fusion: str = "mean", query: int | None = None,
                  discard_ratio: float = 0.9, class_index: int | None = None, text: str | None = None,
                  all_heads: bool = False, top_k: int = 5, cnn_fallback: bool = False):
    """One map (or one per head with all_heads) for `path` under `model_id`.

    layer, head, query and class_index are 0-based; None means the last block, the heads
    fused with `fusion`, the [CLS] row, and the top-1 class. query is a row-major patch
    index or a (row, col) pair. cnn_fallback: a CNN asked for an attention method gets
    Grad-CAM instead of an error (the panel, when the user switches to a CNN). `text` targets a CLIP model's
    class-specific maps at that text instead of a class.
    """
    _check_options(method, fusion, discard_ratio)
    yield Progress(None, "preparing")
    t0 = time.perf_counter()
    entry = catalogue.get(model_id)
    gen = _prepare(ctx, path, model_id)
    try:
        while True:
            yield next(gen)
    except StopIteration as stop:
        e, load_seconds = stop.value
    cap, spec = e.captured, e.captured.spec
    method = _method_for(method, spec, entry, cnn_fallback)
    names = _class_names(entry, cap.scores.shape[0]) if spec.has_classes else ()
    top = _top(cap.scores, names, top_k) if spec.has_classes else ()
    label, target_key, class_index = yield from _target(ctx, e, entry, model_id, method, names, top, class_index, text)
    layer, head, query = _position(spec, entry, cap.acts.shape[0], layer, head, query)
    maps, note, layer = _maps(method, cap, spec, layer, head, fusion, query, discard_ratio, all_heads, label,
                              target_key)
    if method in ("gradcam", "eigencam"):
        head, query = None, None

    from engine.attention.tokens import token_view

    return AttentionResult(
        path=str(path), model_id=model_id, method=method, maps=tuple(maps), spec=spec, token_view=token_view(spec),
        layer=layer, head=head if method == "raw" and not all_heads else None, fusion=fusion,
        query=None if query is None else int(query), discard_ratio=float(discard_ratio), class_index=class_index,
        class_label=label, top=top, image=e.image, crop_box=e.crop_box, image_size=e.image_size, note=note,
        seconds=time.perf_counter() - t0 - load_seconds, load_seconds=load_seconds, domain_warning=e.domain_warning)


def _check_options(method: str, fusion: str, discard_ratio: float) -> None:
    if method not in METHODS:
        raise AttentionError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if fusion not in maths.FUSIONS:
        raise AttentionError(f"unknown head fusion {fusion!r}; choose one of {', '.join(maths.FUSIONS)}")
    if not 0.0 <= discard_ratio < 1.0:
        raise AttentionError("the discard ratio must be at least 0 and below 1")


def _method_for(method: str, spec: Spec, entry, cnn_fallback: bool) -> str:
    """The method to run: a CNN has no attention, so it gets Grad-CAM (cnn_fallback) or an error."""
    if METHODS[method][2] and not spec.is_vit:
        if cnn_fallback:
            return "gradcam"
        raise AttentionError(f"{entry.name} is a CNN: it has no attention to show. Grad-CAM and EigenCAM "
                             "work on its last feature map.")
    return method


def _target(ctx, e, entry, model_id: str, method: str, names, top, class_index, text):
    """(label, gradient key, class index) of a class-specific method, computing the gradients
    once per target (kept for the next GRAD_TARGETS_KEPT requests); a generator for progress."""
    title, needs_target, _ = METHODS[method]
    cap, spec = e.captured, e.captured.spec
    if not needs_target:
        return "", None, None
    if spec.has_classes:
        class_index = top[0].index if class_index is None else int(class_index)
        if not 0 <= class_index < len(names):
            raise AttentionError(f"class {class_index} is outside 0..{len(names) - 1}")
        label, target_key = names[class_index].split(",")[0].strip(), class_index
    elif spec.kind == "open_clip" and text:
        label, target_key, class_index = text.strip(), ("text", text.strip()), None
    else:
        hint = " Type a text to explain the image's similarity to it." if spec.kind == "open_clip" else ""
        raise AttentionError(f"{entry.name} has no classes, so {title} has no target.{hint} "
                             "Raw attention, rollout and EigenCAM need none.")
    if target_key not in cap.grads:
        yield Progress(None, f"gradients for {label}")
        from engine.attention.adapters import adapt
        from engine.attention.compute import gradients
        from engine.catalogue.load import load_model

        model = load_model(ctx, model_id)
        if isinstance(target_key, tuple):
            fn = _clip_text_target(ctx, entry, model, label)
        else:
            fn = (lambda c: (lambda s: s[0, c]))(class_index)
        cap.grads[target_key] = gradients(adapt(model, entry.preprocess.input_size), e.x.to(ctx.device), fn)
        while len(cap.grads) > GRAD_TARGETS_KEPT:
            cap.grads.pop(next(iter(cap.grads)))
    return label, target_key, class_index


def _position(spec: Spec, entry, n_layers: int, layer, head, query) -> tuple[int, int | None, int | None]:
    """The block (0-based, negative counts from the end), head and query patch checked against
    the model; a (row, col) query becomes its row-major index."""
    layer = n_layers - 1 if layer is None else int(layer)
    if not -n_layers <= layer < n_layers:
        raise AttentionError(f"layer {layer + 1} does not exist: {entry.name} has {n_layers} block(s)")
    layer %= n_layers
    if head is not None:
        head = int(head)
        if not 0 <= head < max(1, spec.num_heads):
            raise AttentionError(f"head {head + 1} does not exist: {entry.name} has {spec.num_heads} heads")
    n_patches = spec.grid[0] * spec.grid[1]
    if isinstance(query, (tuple, list)):  # (row, col), 0-based
        row, col = (int(v) for v in query)
        if not (0 <= row < spec.grid[0] and 0 <= col < spec.grid[1]):
            raise AttentionError(f"patch {row + 1},{col + 1} is outside the {spec.grid[0]}×{spec.grid[1]} grid")
        query = row * spec.grid[1] + col
    if query is not None and not 0 <= int(query) < n_patches:
        raise AttentionError(f"patch {query} is outside the {spec.grid[0]}×{spec.grid[1]} grid")
    return layer, head, query


def _maps(method: str, cap, spec: Spec, layer: int, head, fusion: str, query, discard_ratio: float,
          all_heads: bool, label: str, target_key) -> tuple[list[AttentionMap], str, int | None]:
    """The method's map(s), the sentence that says what they show, and the block they belong to
    (None for whole-network methods and for a CNN's last feature map)."""
    q_token = None if query is None else spec.prefix + int(query)
    where = "[CLS]" if query is None and spec.prefix else (
        "all tokens (no [CLS])" if query is None else f"patch {int(query) // spec.grid[1] + 1},{int(query) % spec.grid[1] + 1}")
    n_layers = cap.acts.shape[0]
    maps: list[AttentionMap] = []
    if method == "raw":
        a = cap.attn[layer]  # (H, N, N)
        if all_heads:
            for h_i in range(a.shape[0]):
                maps.append(_map(f"head {h_i + 1}", maths.token_row_map(a[h_i], spec.grid, spec.prefix, q_token)))
        else:
            m = a[head] if head is not None else maths.fuse_heads(a, fusion)
            maps.append(_map(f"block {layer + 1} · " + (f"head {head + 1}" if head is not None else f"{fusion} of heads"),
                             maths.token_row_map(m, spec.grid, spec.prefix, q_token)))
        return maps, f"Attention of {where} to every patch in block {layer + 1}; the share each patch gets.", layer
    if method == "rollout":
        r = maths.rollout(cap.attn, discard_ratio, fusion)
        maps.append(_map(f"rollout · {fusion} · discard {discard_ratio:.2f}",
                         maths.token_row_map(r, spec.grid, spec.prefix, q_token)))
        return maps, f"How much of each patch flows into {where} through all {n_layers} blocks (residuals included).", None
    if method == "gradrollout":
        attn_g, _ = cap.grads[target_key]
        r = maths.grad_rollout(cap.attn, attn_g, discard_ratio)
        maps.append(_map(f"gradient rollout · {label}", maths.token_row_map(r, spec.grid, spec.prefix, q_token)))
        return maps, f"Attention weighted by its gradient for “{label}”, kept where it raises the score, rolled out.", None
    acts = cap.acts[layer]  # (h, w, D) or (h, w, C)
    if method == "gradcam":
        _, act_g = cap.grads[target_key]
        maps.append(_map(f"Grad-CAM · {label}", maths.grad_cam(acts, act_g[layer])))
        note = f"Where the {_layer_words(spec, layer)} pushes “{label}” up (Grad-CAM)."
    else:
        maps.append(_map("EigenCAM", maths.eigen_cam(acts)))
        note = f"The first principal component of the {_layer_words(spec, layer)} (EigenCAM, class-agnostic)."
    return maps, note, layer if spec.is_vit else None


def _layer_words(spec: Spec, layer: int) -> str:
    if spec.is_vit:
        return f"patch tokens entering block {layer + 1}'s attention ([CLS] dropped, {spec.grid[0]}×{spec.grid[1]})"
    return f"last feature map ({spec.grid[0]}×{spec.grid[1]}×{spec.embed_dim})"


def _map(title: str, m: np.ndarray) -> AttentionMap:
    values, peak = maths.normalise(m)
    return AttentionMap(title, values, peak)
