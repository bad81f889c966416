"""Tiny unCLIP on the CPU: 4 images at 50 DDIM steps, end to end, vs the bare U-Net work.

Ours: the built-in fmnist-unclip-tiny as the "generate" job runs it (LiT text embedding,
diffusion prior with 32 DDIM steps, decoder with 50 DDIM steps and classifier-free
guidance, the clean-image estimate converted for a preview every 5 steps). Reference:
50 plain forward passes of the same U-Net on the same batch (4 images × 2 for guidance),
the irreducible work. Timed over several rounds, alternating the two; the best round
counts. Goal: 4 images in <= 2 s; the ratio shows what the pipeline adds.

    python benchmarks/generate_tiny.py [--rounds 5] [--threads N]
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

import torch  # noqa: E402

from engine.catalogue import get  # noqa: E402
from engine.catalogue.load import build_model  # noqa: E402
from engine.generate.unclip import TINY, TinyUnclip, to_uint8  # noqa: E402

N, STEPS, GUIDANCE, PREVIEW_EVERY = 4, 50, 3.0, 5


def ours(pipe: TinyUnclip, seed: int) -> float:
    t0 = time.perf_counter()
    prior_noise, x_T = pipe.noise([seed + i for i in range(N)])
    text = pipe.text_embedding(["a photo of a sneaker."]).expand(N, -1)
    emb = pipe.prior_embedding(text, "diffusion", prior_noise, 32, 1.0)
    for step in pipe.decode_iter(emb, x_T, STEPS, GUIDANCE):
        if step.index % PREVIEW_EVERY == 0:
            to_uint8(step.x0)  # what a preview costs
    to_uint8(step.x)
    return time.perf_counter() - t0


def reference(decoder, cond: torch.Tensor, x: torch.Tensor) -> float:
    t0 = time.perf_counter()
    with torch.inference_mode():
        x2, c2 = torch.cat([x, x]), torch.cat([cond, cond])
        keep = torch.ones(2 * N, dtype=torch.bool)
        keep[N:] = False
        for i in range(STEPS):
            t = torch.full((2 * N,), 999 - 20 * i, dtype=torch.long)
            decoder(x2, t, c2, keep)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = {"clip": build_model(get(TINY.clip)), "decoder": build_model(get(TINY.decoder)),
             "priors": {"diffusion": build_model(get(TINY.priors["diffusion"]))}}
    pipe = TinyUnclip(None, TINY, parts=parts)
    cond = torch.nn.functional.normalize(torch.randn(N, pipe.embed_dim), dim=-1)
    x = torch.randn(N, 1, 28, 28)
    ours(pipe, 0), reference(pipe.decoder, cond, x)  # warm-up
    a, b = [], []
    for r in range(args.rounds):
        a.append(ours(pipe, r))
        b.append(reference(pipe.decoder, cond, x))
    best_a, best_b = min(a), min(b)
    print(f"tiny unCLIP, {N} images x {STEPS} DDIM steps (guidance {GUIDANCE}), CPU, {torch.get_num_threads()} "
          f"thread(s), best of {args.rounds}")
    print(f"  ours (text + prior + decoder + previews): {best_a:.3f} s   (goal <= 2 s: "
          f"{'met' if best_a <= 2.0 else 'not met'})")
    print(f"  reference ({STEPS} bare U-Net forwards, batch {2 * N}): {best_b:.3f} s")
    print(f"  ratio ours / reference: {best_a / best_b:.3f}x")
    print(f"  all rounds: ours {[round(v, 3) for v in a]}, reference {[round(v, 3) for v in b]}")


if __name__ == "__main__":
    main()
