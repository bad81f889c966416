"""Single-stream fusion (ViLT) vs align before fuse (ALBEF): the two built-in Match models.

For each: zero-shot test accuracy by ITM alone (every Fashion-MNIST test image against one
prompt per class, "a photo of a t-shirt." ...: the class with the highest P(match)), the
time of that batched ITM pass per (image, caption) pair, and the time per caption of the
"match" job as the Match panel runs it (10 captions against one
image, word maps included; the best of several rounds). ALBEF also scores ITC, whose
caption vectors could be computed once and compared by a dot product; ViLT cannot.

    python benchmarks/match_vilt_vs_albef.py [--threads 1] [--rounds 5] [--limit 0]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PATCHWORK_HOME", tempfile.mkdtemp(prefix="pw-bench-"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.catalogue import get  # noqa: E402
from engine.catalogue.load import build_model  # noqa: E402
from engine.data import captions as fm_captions  # noqa: E402
from engine.data import fashion_mnist  # noqa: E402

MODELS = ("fmnist-albef-tiny", "fmnist-vilt-tiny")


def encoders(model, family: str):
    """(image -> image tokens, (tokens, mask) -> text tokens) for the model's fuse()."""
    if family == "vilt":
        return model.embed_image, lambda t, m: model.embed_text(t)
    return (lambda x: model.unimodal.image(x)[0]), (lambda t, m: model.unimodal.text_side(t, m)[0])


@torch.inference_mode()
def zero_shot_by_itm(model_id: str, limit: int, chunk: int = 200) -> tuple[float, float]:
    """(accuracy, microseconds of fusion per (image, caption) pair, image encoding excluded)."""
    entry = get(model_id)
    model = build_model(entry).eval()
    image_of, text_of = encoders(model, entry.family)
    test = fashion_mnist.load_fashion_mnist("test")
    images, labels = test.images[:limit or None], np.asarray(test.labels[:limit or None])
    tokens, mask, _ = model.minilm_tokens([fm_captions.prompts(c)[0] for c in range(10)])
    text = text_of(tokens, mask)  # (10, T, W)
    pp, right, fusing = entry.preprocess, 0, 0.0
    for start in range(0, len(labels), chunk):
        x = torch.from_numpy(np.asarray(images[start:start + chunk], np.float32) / 255.0)[:, None]
        x = (x - pp.mean[0]) / pp.std[0]
        img = image_of(x)
        B = len(img)
        t0 = time.perf_counter()
        p = model.fuse(text.repeat(B, 1, 1), mask.repeat(B, 1), img.repeat_interleave(10, 0)).softmax(-1)[:, 1]
        fusing += time.perf_counter() - t0
        right += int((p.view(B, 10).argmax(1).numpy() == labels[start:start + chunk]).sum())
    return right / len(labels), 1e6 * fusing / (10 * len(labels))


def ms_per_caption(model_id: str, rounds: int) -> float:
    from engine.core import Engine
    from engine.data.samples import fashion_mnist_samples

    path = fashion_mnist_samples(1)[0][0]
    captions = [fm_captions.prompts(c)[0] for c in range(10)]
    engine = Engine(device="cpu").start()
    try:
        engine.wait_ready()
        times = [engine.submit("match", {"path": path, "captions": captions, "model_id": model_id}).result().seconds
                 for _ in range(rounds + 1)][1:]  # the first also loads the model
    finally:
        engine.shutdown()
    return 1000 * min(times) / len(captions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--limit", type=int, default=0, help="test images for the zero-shot accuracy (0: all 10,000)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for model_id in MODELS:
        acc, us = zero_shot_by_itm(model_id, args.limit)
        ms = ms_per_caption(model_id, args.rounds)
        print(f"{model_id:20s} zero-shot by ITM (1 prompt/class) {100 * acc:5.1f} %   ITM {us:6.1f} µs per pair "
              f"(batched)   match job {ms:6.2f} ms per caption")


if __name__ == "__main__":
    main()
