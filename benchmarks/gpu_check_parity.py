"""gpu_check, section "parity": each panel's job on the CPU and on the device, compared.

Both sides are real engines (engine.core.Engine, one per device) answering the same named
requests the panels and the CLI submit. Random-weight ViT-B/16 (timm), open_clip ViT-B/32 and
MAE ViT-B/16 are written in their published formats into the private HF / torch caches that
gpu_check points HF_HOME and TORCH_HOME at, so the catalogue finds them "ready" and loads them
through its own path, exactly as it would after a download.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from benchmarks.gpu_check import FAIL, PASS, Row

#: Stated tolerances. GPU and CPU kernels sum in different orders and cuDNN convolutions use
#: TF32 by default, so fp32 results agree to about 1e-3 relative, not bit for bit.
TOL = {
    "prob": 2e-3,  # softmax probabilities (classify top-k, ITM, ITC)
    "map": 2e-2,  # peak-normalised maps in [0, 1]: raw attention, rollout, EigenCAM
    "grad_map": 5e-2,  # maps from gradients: gradient rollout, Grad-CAM, word maps
    "pixels_mean": 2.0,  # MAE reconstruction / generated images: mean |Δ| in 0..255 levels
    "vector_cos": 0.9999,  # search embeddings: cosine of the CPU's and the device's vector
}
TIMEOUT = 600
PROMPT = "a photo of a cat"

_engines: dict[str, object] = {}
_state: dict = {}


def engine(device: str):
    """One started engine per device (the CPU reference and the device under test)."""
    if device not in _engines:
        from engine.core import Engine

        eng = Engine(device=device, memory_budget_mb=60_000).start()
        if not eng.wait_ready(120):
            raise RuntimeError(f"the {device} engine did not start")
        _engines[device] = eng
    return _engines[device]


def shutdown_engines() -> None:
    for eng in _engines.values():
        eng.shutdown()
    _engines.clear()


def answer(device: str, request: str, params: dict):
    """One request's result; a wait cut short (the check's time cap) cancels the job, so it does
    not hold up the next check's requests on that engine."""
    handle = engine(device).submit(request, params)
    try:
        return handle.result(TIMEOUT)
    finally:
        if not handle.wait(0):
            handle.cancel()


def both(settings, request: str, params: dict) -> tuple:
    """The same request answered by the CPU engine and by the device engine."""
    return answer("cpu", request, params), answer(settings.device, request, params)


def on_device(settings, request: str, params: dict):
    return answer(settings.device, request, params)


# ---------------------------------------------------------------------------- inputs
def photos(settings) -> list[str]:
    """A few distinct photos (scikit-image samples, cropped and re-coloured), made once."""
    if "photos" not in _state:
        from benchmarks.photos import make_photos

        _state["photos"] = [str(p) for p in make_photos(settings.work / "photos", 4, size=(640, 480))]
    return _state["photos"]


def fmnist_images(settings) -> list[str]:
    """Fashion-MNIST test images as PNGs (the panels' samples), or photos where it is missing."""
    if "fmnist" not in _state:
        from engine.data.samples import fashion_mnist_samples

        _state["fmnist"] = [p for p, _ in fashion_mnist_samples(3)] or photos(settings)[:2]
    return _state["fmnist"]


def hf_file(model_id: str) -> Path:
    """Where the catalogue looks for an "hf" entry's file: a snapshot under the HF cache, ref written."""
    from engine import catalogue
    from engine.downloads import caches

    src = catalogue.get(model_id).source
    repo = caches.hf_repo_dir(src.location)
    commit = uuid.uuid4().hex + "00000000"  # 40 hex digits, as a hub commit
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    path = repo / "snapshots" / commit / src.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_random_timm(model_id: str, seed: int) -> None:
    """A timm catalogue entry as random weights in timm's published model.safetensors."""
    import timm
    import torch
    from safetensors.torch import save_file

    from engine import catalogue

    torch.manual_seed(seed)
    model = timm.create_model(catalogue.get(model_id).arch, pretrained=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(hf_file(model_id)))


def publish_random_models(settings) -> None:
    """timm-vit-base, clip-b32-laion2b and mae-vis-base as random weights in their published files."""
    if _state.get("published"):
        return
    import open_clip
    import torch
    from safetensors.torch import save_file

    from engine import catalogue
    from engine.catalogue.locate import READY, state_of
    from engine.downloads import caches
    from engine.models.mae import FACTORIES

    write_random_timm("timm-vit-base", seed=0)
    torch.manual_seed(1)
    clip = open_clip.create_model("ViT-B-32", pretrained=None)
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(hf_file("clip-b32-laion2b")))
    torch.manual_seed(2)
    mae_entry = catalogue.get("mae-vis-base")
    mae = FACTORIES[mae_entry.arch]()
    ckpt = caches.torch_checkpoints_dir() / mae_entry.source.filename
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": mae.state_dict()}, ckpt)  # the official checkpoints' layout
    for model_id in ("timm-vit-base", "clip-b32-laion2b", "mae-vis-base"):
        state = state_of(catalogue.get(model_id)).state
        if state != READY:
            raise RuntimeError(f"{model_id} written to the private cache but the catalogue says {state!r}")
    _state["published"] = True


# ---------------------------------------------------------------------------- comparisons
def max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max()) if np.size(a) else 0.0


def topk_agree(top_a, top_b, tol: float) -> tuple[bool, str]:
    """Top-k lists of Predictions: equal order, or different only where the CPU's own
    probabilities tie within `tol` (random weights give near-equal logits)."""
    ia, ib = [p.index for p in top_a], [p.index for p in top_b]
    pa = {p.index: p.prob for p in top_a}
    pb = {p.index: p.prob for p in top_b}
    worst = max(abs(pa[i] - pb[i]) for i in set(pa) & set(pb)) if set(pa) & set(pb) else 1.0
    if ia == ib:
        return worst <= tol, f"top-{len(ia)} equal, max |Δp| {worst:.1e}"
    probs_a = [p.prob for p in top_a]
    gaps = [abs(probs_a[k] - pb.get(ia[k], 0.0)) for k in range(len(ia)) if ia[k] != ib[k]]
    near_tie = max(probs_a) - min(probs_a) <= tol or (gaps and max(gaps) <= tol)
    return bool(near_tie), f"top-k order differs: CPU {ia} vs device {ib} (max |Δp| {worst:.1e})"


def row(check: str, ok: bool, value: str, goal: str, **data) -> Row:
    return Row("parity", check, PASS if ok else FAIL, value, goal, data=data)


# ---------------------------------------------------------------------------- checks
def classify(settings, model_id: str, images) -> list[Row]:
    out = []
    for path in images(settings)[:2]:
        cpu, dev = both(settings, "classify", {"path": path, "model_id": model_id, "top_k": 5, "preview": False})
        ok, note = topk_agree(cpu.top, dev.top, TOL["prob"])
        out.append(row(f"classify {model_id} {Path(path).name}", ok, note, f"top-5 equal, |Δp| ≤ {TOL['prob']}",
                       cpu=[p.index for p in cpu.top], device=[p.index for p in dev.top]))
    return out


def attention(settings, model_id: str, image, methods, text: str | None = None) -> list[Row]:
    path = image(settings)[0]
    out = []
    target = {}
    for method in methods:
        params = {"path": path, "model_id": model_id, "method": method, "text": text, **target}
        cpu, dev = both(settings, "attention", params)
        if cpu.class_index is not None and "class_index" not in target:
            target = {"class_index": cpu.class_index}  # the same class on both sides from here on
            if dev.class_index != cpu.class_index:
                params["class_index"] = cpu.class_index
                dev = on_device(settings, "attention", params)
        tol = TOL["grad_map"] if method in ("gradrollout", "gradcam") else TOL["map"]
        d = max(max_diff(a.values, b.values) for a, b in zip(cpu.maps, dev.maps))
        shapes_equal = [m.values.shape for m in cpu.maps] == [m.values.shape for m in dev.maps]
        top_ok, top_note = topk_agree(cpu.top, dev.top, TOL["prob"]) if cpu.top else (True, "")
        ok = shapes_equal and d <= tol and top_ok
        value = f"max |Δmap| {d:.1e}" + (f"; {top_note}" if cpu.top else "")
        out.append(row(f"attention {model_id} {method}", ok, value, f"|Δ| ≤ {tol} (maps peak 1)", max_abs_diff=d))
    return out


def mae_views(settings, model_id: str, image) -> list[Row]:
    path = image(settings)[0]
    params = {"path": path, "model_id": model_id, "mask_ratio": 0.75, "seed": 3, "mode": "random"}
    cpu, dev = both(settings, "mae", params)
    again = on_device(settings, "mae", params)
    a, b = cpu.views, dev.views
    same_mask = np.array_equal(a.ids_shuffle, b.ids_shuffle) and np.array_equal(a.hidden, b.hidden)
    rec = np.abs(a.reconstruction.astype(float) - b.reconstruction.astype(float))
    repeat = np.array_equal(dev.views.reconstruction, again.views.reconstruction)
    mse = abs((a.masked_mse or 0) - (b.masked_mse or 0)) / max(1e-12, abs(a.masked_mse or 1))
    ok = same_mask and rec.mean() <= TOL["pixels_mean"] and repeat
    return [row(f"mae views {model_id}", ok,
                f"mask {'same' if same_mask else 'DIFFERENT'}; recon mean |Δ| {rec.mean():.2f}, max {rec.max():.0f} "
                f"levels; masked MSE rel Δ {mse:.1e}; same seed twice on device: {'equal' if repeat else 'DIFFERENT'}",
                f"same mask, mean |Δ| ≤ {TOL['pixels_mean']}, repeat equal", recon_mean=float(rec.mean()),
                recon_max=float(rec.max()), same_mask=same_mask, repeat_equal=repeat)]


def match(settings, model_id: str) -> list[Row]:
    path = fmnist_images(settings)[0]
    captions = ["a photo of a t-shirt.", "a photo of a sneaker.", "a photo of a bag."]
    cpu, dev = both(settings, "match", {"path": path, "captions": captions, "model_id": model_id})
    itm = max(abs(a.itm_probability - b.itm_probability) for a, b in zip(cpu.captions, dev.captions))
    itc = max((abs(a.itc_probability - b.itc_probability) for a, b in zip(cpu.captions, dev.captions)
               if a.itc_probability is not None), default=0.0)
    maps = max(max_diff(a.word_maps, b.word_maps) for a, b in zip(cpu.captions, dev.captions))
    ok = itm <= TOL["prob"] and itc <= TOL["prob"] and maps <= TOL["grad_map"]
    return [row(f"match {model_id}", ok, f"ITM |Δp| {itm:.1e}, ITC |Δp| {itc:.1e}, word maps |Δ| {maps:.1e}",
                f"|Δp| ≤ {TOL['prob']}, maps ≤ {TOL['grad_map']}", itm=itm, itc=itc, maps=maps)]


def search(settings, model_id: str) -> list[Row]:
    from engine.search import db

    folder = str(settings.work / "photos")
    photos(settings)
    dbs = {}
    # the device first: the search's reference bank (cached per model) is then embedded on the device
    sides = (("device", settings.device), ("cpu", "cpu"))
    for side, dev in sides:
        dbs[side] = str(settings.work / f"index-{model_id}-{side}.sqlite3")
        res = answer(dev, "index_folder", {"folder": folder, "model_id": model_id, "db_path": dbs[side],
                                           "batch_size": 8})
        if res.embedded != res.total or res.bad:
            return [row(f"search {model_id}", False, f"{side}: {res.embedded}/{res.total} embedded, bad {res.bad}", "")]
    vectors = {}
    for side, path in dbs.items():
        con = db.connect(path)
        try:
            paths, matrix = db.load_vectors(con, model_id, str(Path(folder).resolve()))
        finally:
            con.close()
        vectors[side] = dict(zip(paths, matrix))
    cos = min(float(np.dot(vectors["cpu"][p], vectors["device"][p])) for p in vectors["cpu"])
    hits = {}
    for side, dev in sides:
        hits[side] = answer(dev, "search", {"query": PROMPT, "folder": folder, "model_id": model_id,
                                            "top_k": 10, "db_path": dbs[side]}).hits
    order_equal = [h.path for h in hits["cpu"]] == [h.path for h in hits["device"]]
    score = max(abs(a.score - b.score) for a, b in zip(hits["cpu"], hits["device"]))
    ok = cos >= TOL["vector_cos"] and (order_equal or score <= TOL["prob"])
    return [row(f"search {model_id} index + query", ok,
                f"min cos(cpu, device) {cos:.6f}; top-10 {'equal' if order_equal else 'order differs'}, "
                f"max |Δscore| {score:.1e}", f"cos ≥ {TOL['vector_cos']}, same hits", min_cos=cos,
                order_equal=order_equal)]


def generate(settings) -> list[Row]:
    steps = settings.size(50, 8)
    params = {"prompt": "a photo of a sneaker", "seed": 7, "steps": steps, "n": 2, "save": False,
              "explain": False, "preview_every": 0}
    cpu, dev = both(settings, "generate", params)
    again = on_device(settings, "generate", params)
    a = np.stack([im.pixels for im in cpu.images]).astype(float)
    b = np.stack([im.pixels for im in dev.images]).astype(float)
    c = np.stack([im.pixels for im in again.images]).astype(float)
    repeat = np.array_equal(b, c)
    d = np.abs(a - b)
    ok = repeat and d.mean() <= TOL["pixels_mean"]
    return [row(f"generate fmnist-unclip-tiny ({steps} DDIM steps)", ok,
                f"same seed twice on device: {'bit-identical' if repeat else 'DIFFERENT'}; CPU vs device mean |Δ| "
                f"{d.mean():.2f}, max {d.max():.0f} levels", f"repeat equal, mean |Δ| ≤ {TOL['pixels_mean']}",
                repeat_equal=repeat, mean_abs=float(d.mean()), max_abs=float(d.max()))]


def published(settings):
    publish_random_models(settings)
    return Row("parity", "random-weight models in published formats", PASS,
               "timm ViT-B/16 model.safetensors, open_clip ViT-B/32 open_clip_model.safetensors, MAE ViT-B .pth",
               "catalogue: ready")


def _needs_published(fn):
    def wrapped(settings):
        publish_random_models(settings)
        return fn(settings)
    return wrapped


def checks(settings):
    """(name, fn, estimated seconds on this device) in order."""
    s = settings
    scale = 1.0 if not s.cuda else 0.5  # the CPU reference still runs on the CPU
    grad4 = ("raw", "rollout", "gradrollout", "gradcam")
    items = [
        ("publish random models", lambda: published(s), 15),
        ("classify efficientnet-lite0", lambda: classify(s, "efficientnet-lite0", photos), 8),
        ("classify fmnist-vit-tiny", lambda: classify(s, "fmnist-vit-tiny", fmnist_images), 4),
        ("classify timm-vit-base", _bind(_needs_published(lambda x: classify(x, "timm-vit-base", photos)), s), 10),
        ("attention fmnist-vit-tiny", lambda: attention(s, "fmnist-vit-tiny", fmnist_images, grad4), 4),
        ("attention efficientnet-lite0",
         lambda: attention(s, "efficientnet-lite0", photos, ("gradcam", "eigencam")), 8),
        ("attention timm-vit-base", _bind(_needs_published(lambda x: attention(x, "timm-vit-base", photos, grad4)), s),
         20),
        ("attention clip-b32", _bind(_needs_published(
            lambda x: attention(x, "clip-b32-laion2b", photos, grad4, text=PROMPT)), s), 20),
        ("attention mae-vis-base", _bind(_needs_published(
            lambda x: attention(x, "mae-vis-base", photos, ("raw", "rollout"))), s), 10),
        ("mae fmnist-mae-tiny", lambda: mae_views(s, "fmnist-mae-tiny", fmnist_images), 4),
        ("mae mae-vis-base", _bind(_needs_published(lambda x: mae_views(x, "mae-vis-base", photos)), s), 10),
        ("match fmnist-albef-tiny", lambda: match(s, "fmnist-albef-tiny"), 8),
        ("match fmnist-vilt-tiny", lambda: match(s, "fmnist-vilt-tiny"), 6),
        ("search conse-lite0-minilm", lambda: search(s, "conse-lite0-minilm"), 15),
        ("search fmnist-lit-tiny", lambda: search(s, "fmnist-lit-tiny"), 6),
        ("search clip-b32", _bind(_needs_published(lambda x: search(x, "clip-b32-laion2b")), s)
         if not s.quick else _quick_skip("its text tower embeds the search's reference bank: minutes on a CPU"), 30),
        ("generate fmnist-unclip-tiny", lambda: generate(s), 10),
    ]
    return [(name, fn, est * scale) for name, fn, est in items]


def _quick_skip(why: str):
    return lambda: Row("parity", "", "skip", detail=f"--quick: {why}")


def _bind(fn, settings):
    return lambda: fn(settings)
