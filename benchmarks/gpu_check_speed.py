"""gpu_check, section "throughput": our code paths against the libraries called directly, in one run.

Each pair runs the same weights on the same inputs, interleaved, and reports medians. On CUDA
the forward passes run under bf16 autocast (what the goals are about); the CPU dry run uses
fp32 and tiny batches, and its ratios are printed but not judged.
"""
from __future__ import annotations

import contextlib
import itertools
import statistics
import time

from benchmarks.gpu_check import FAIL, INFO, PASS, Row


def _sync(device: str):
    import torch

    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def amp(settings):
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16) if settings.cuda else contextlib.nullcontext()


def interleaved(fns: dict, repeats: int, sync) -> dict:
    """Median seconds per call of each fn, alternating them so machine noise hits all."""
    for fn in fns.values():  # warm-up (kernel selection, caches)
        fn()
    sync()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def judged(settings, check: str, ratio: float, goal: str, ok: bool, value: str, **data) -> Row:
    status = (PASS if ok else FAIL) if settings.cuda else INFO
    return Row("throughput", check, status, value, goal, detail="" if settings.cuda else "CPU: not judged",
               data={"ratio": ratio, **data})


# ---------------------------------------------------------------------------- ViT-B/16
def _vit_pair(settings):
    """(ours: the catalogue's timm ViT built by our loader, ref: timm's own model), same weights.
    ViT-B/16 (timm-vit-base); --quick uses ViT-Ti/16 (timm-vit-tiny), written here the same way."""
    import timm

    from benchmarks.gpu_check_parity import publish_random_models, write_random_timm
    from engine import catalogue
    from engine.catalogue.load import build_model

    model_id = "timm-vit-tiny" if settings.quick else "timm-vit-base"
    if settings.quick:
        write_random_timm(model_id, seed=3)
    else:
        publish_random_models(settings)
    entry = catalogue.get(model_id)
    ours = build_model(entry).to(settings.device)
    ref = timm.create_model(entry.arch, pretrained=False).eval()
    ref.load_state_dict(ours.state_dict())
    return ours, ref.to(settings.device)


def vit_wrapper(settings) -> list[Row]:
    import torch

    from engine.attention.adapters import adapt
    from engine.attention.capture import capturing

    ours, ref = _vit_pair(settings)
    adapter = adapt(ours)
    mods = adapter.attention_modules()
    b = settings.size(256, 2)
    x = torch.randn(b, 3, 224, 224, device=settings.device)
    ctx = lambda: amp(settings)  # noqa: E731

    def direct():
        with torch.inference_mode(), ctx():
            ref(x)

    def wrapper():
        with torch.inference_mode(), ctx():
            adapter.scores(x)

    def capture():
        with torch.no_grad(), ctx(), capturing(mods):
            adapter.scores(x)

    med = interleaved({"direct": direct, "wrapper": wrapper, "capture": capture}, settings.size(10, 2),
                      _sync(settings.device))
    with torch.no_grad(), ctx():
        plain_logits = adapter.scores(x[:2]).float()
        with capturing(mods):
            cap_logits = adapter.scores(x[:2]).float()
    drift = float((plain_logits - cap_logits).abs().max())
    kind = ("bf16" if settings.cuda else "fp32") + (", ViT-Ti/16 (--quick)" if settings.quick else "")
    speed = med["direct"] / med["wrapper"]
    over = med["capture"] / med["direct"]
    return [
        judged(settings, f"ViT-B/16 inference ({kind}): wrapper vs timm", speed, "≥ 1.0×", speed >= 0.98,
               f"{b / med['wrapper']:,.0f} vs {b / med['direct']:,.0f} img/s: ×{speed:.3f} (batch {b})",
               ours_img_s=b / med["wrapper"], timm_img_s=b / med["direct"]),
        judged(settings, f"attention capture vs plain forward ({kind})", over, "≤ 1.3×", over <= 1.3,
               f"×{over:.3f}; |Δlogits| capture vs plain {drift:.1e}", logits_drift=drift),
    ]


# ---------------------------------------------------------------------------- training loop
def _train_recipe(settings, steps: int):
    from engine.data import fashion_mnist
    from engine.train.recipes.supervised import SupervisedRecipe

    if fashion_mnist.is_available():
        dataset = "fashion-mnist"
    else:  # a generated class-folder dataset big enough for batch 256
        from tests.engine.training import write_shapes

        root = settings.work / "shapes-big"
        if not root.exists():
            root.mkdir(parents=True)
            write_shapes(root, per_class=400, seed=1)
        dataset = str(root)
    b = settings.size(256, 32)
    config = {"flip": False, "batch_size": b, "log_every": 20, "eval_every": 0, "test_limit": 256,
              "checkpoint_seconds": 1e9, "max_steps": steps}
    if not settings.cuda or settings.quick:
        config.update({"embed_dim": 32, "depth": 2, "num_heads": 2})
    rec = SupervisedRecipe(config, dataset)
    rec.device = settings.device
    for _ in rec.prepare():
        pass
    return rec, dataset


def _loop_samples_per_s(settings, steps: int, warmup: int) -> float:
    from engine.jobs import Progress
    from engine.runs.checkpoint import RunFolder
    from engine.train.loop import train

    rec, _ = _train_recipe(settings, steps)
    stamps = {}
    run = RunFolder(settings.work / f"loop-{time.monotonic_ns()}")
    for ev in train(rec, run, settings.device):
        if isinstance(ev, Progress) and ev.done in (warmup, steps):
            if settings.cuda:
                _sync(settings.device)()
            stamps.setdefault(ev.done, time.perf_counter())
    return (steps - warmup) * rec.config.batch_size / (stamps[steps] - stamps[warmup])


def _plain_samples_per_s(settings, steps: int, warmup: int) -> float:
    import torch
    import torch.nn.functional as F

    from engine.models.vit import build_vit

    rec, _ = _train_recipe(settings, steps)
    torch.manual_seed(0)
    dev = settings.device
    model = build_vit(rec.model_config()).to(dev)
    x_all, y_all = torch.from_numpy(rec.train_x).to(dev), torch.from_numpy(rec.train_y).to(dev)
    mean = torch.tensor(rec.mean, device=dev).view(1, -1, 1, 1)
    std = torch.tensor(rec.std, device=dev).view(1, -1, 1, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    model.train()
    sync = _sync(dev)
    t0 = None
    batches = (idx for epoch in itertools.count() for idx in rec.order.batches(epoch, 0))
    for i, idx in enumerate(batches):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        if i == steps:
            break
        idx = torch.as_tensor(idx, device=dev)
        x = (x_all[idx].float() / 255.0 - mean) / std  # train_x is (N, C, H, W) uint8
        with amp(settings):
            loss = F.cross_entropy(model(x), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync()
    return (steps - warmup) * rec.config.batch_size / (time.perf_counter() - t0)


def train_loop(settings) -> Row:
    steps, warmup = settings.size(120, 8), settings.size(20, 2)
    plain = _plain_samples_per_s(settings, steps, warmup)
    ours = _loop_samples_per_s(settings, steps, warmup)
    ratio = ours / plain
    b = settings.size(256, 32)
    return judged(settings, f"training loop vs plain AdamW loop (batch {b})", ratio, "≥ 0.95×", ratio >= 0.95,
                  f"{ours:,.0f} vs {plain:,.0f} samples/s: ×{ratio:.3f}", ours=ours, plain=plain)


# ---------------------------------------------------------------------------- MAE
def mae_masking(settings) -> Row:
    import torch

    from engine.models.mae import FACTORIES, num_kept

    torch.manual_seed(0)
    arch = "mae_vit_tiny" if settings.quick else "mae_vit_base_patch16"
    model = FACTORIES[arch]().to(settings.device).eval()
    b = settings.size(256, 2)
    c, size = model.config.in_chans, model.config.img_size
    x = torch.randn(b, c, size, size, device=settings.device)

    def encode(ratio):
        def fn():
            with torch.no_grad(), amp(settings):
                model.forward_encoder(x, ratio)
        return fn

    med = interleaved({0.0: encode(0.0), 0.75: encode(0.75)}, settings.size(10, 2), _sync(settings.device))
    ratio = med[0.0] / med[0.75]
    return judged(settings, f"MAE encoder ({arch}): 75 % vs 0 % masking", ratio, "≥ 3.5×", ratio >= 3.5,
                  f"{1000 * med[0.75]:.1f} vs {1000 * med[0.0]:.1f} ms (batch {b}, "
                  f"{num_kept(model.num_patches, 0.75)} of {model.num_patches} tokens): ×{ratio:.2f}")


# ---------------------------------------------------------------------------- indexing and decoding
def indexing(settings) -> list[Row]:
    """The index job's images/s on the device (its decoding is on the CPU, in a worker pool), and the
    JPEG decode step alone: torchvision.io.decode_jpeg on the device vs PIL on the CPU."""
    import numpy as np
    import torchvision
    from PIL import Image

    from benchmarks.gpu_check_parity import engine
    from benchmarks.photos import make_photos

    n, size = settings.size(64, 4), settings.size((1600, 1200), (640, 480))
    folder = settings.work / "index-photos"
    if not folder.exists():
        make_photos(folder, n, size=size)
    paths = sorted(str(p) for p in folder.glob("*.jpg"))
    res = engine(settings.device).submit("index_folder", {
        "folder": str(folder), "model_id": "conse-lite0-minilm", "batch_size": 32,
        "db_path": str(settings.work / f"speed-{time.monotonic_ns()}.sqlite3")}).result(600)
    index_rate = res.total / res.seconds

    datas = [torchvision.io.read_file(p) for p in paths]

    def pil_full():
        for p in paths:
            with Image.open(p) as im:
                np.asarray(im.convert("RGB"))

    def pil_draft():  # what the index job does: JPEG draft mode at the model's input size
        from engine.images import open_image

        for p in paths:
            np.asarray(open_image(p, draft=(256, 256)))

    fns = {"pil_full": pil_full, "pil_draft": pil_draft}
    if settings.cuda:
        fns["device"] = lambda: torchvision.io.decode_jpeg(datas, device=settings.device)
    med = interleaved(fns, settings.size(3, 1), _sync(settings.device))
    rates = {k: len(paths) / v for k, v in med.items()}
    dev_note = (f"decode_jpeg on {settings.device} {rates['device']:,.0f} img/s vs PIL full {rates['pil_full']:,.0f}, "
                f"PIL draft {rates['pil_draft']:,.0f} (one CPU thread)" if settings.cuda else
                f"PIL full {rates['pil_full']:,.0f}, draft {rates['pil_draft']:,.0f} img/s (no GPU decode here)")
    ratio = rates.get("device", rates["pil_draft"]) / rates["pil_draft"]
    return [
        Row("throughput", f"index job on {settings.device} ({n} {size[0]}×{size[1]} JPEGs, ConSE)", INFO,
            f"{index_rate:,.1f} images/s (decode on CPU workers)", "",
            detail="the project has no on-device decode path yet", data={"images_s": index_rate}),
        Row("throughput", "JPEG decode step: device vs CPU", INFO, dev_note, "",
            detail="decode step alone: the index job still decodes on the CPU", data={"rates": rates, "ratio": ratio}),
    ]


def checks(settings):
    s = settings
    return [
        ("ViT-B/16 wrapper and capture", lambda: vit_wrapper(s), s.size(30, 25)),
        ("training loop vs plain loop", lambda: train_loop(s), s.size(40, 25)),
        ("MAE masking speed-up", lambda: mae_masking(s), s.size(25, 15)),
        ("indexing and JPEG decode", lambda: indexing(s), s.size(45, 20)),
    ]
