"""Kandinsky 2.2: what Patchwork's wrapper adds over diffusers called directly.

Tiny random-initialised prior + decoder in the published layout (tests/engine/kandinsky_tiny.py)
in a temporary HF cache. Ours: the "generate" job on the engine thread (the decoder call in a
helper thread, step events relayed through a queue, MoVQ preview every `--preview-every`
steps, uint8 conversion; models cached after the first run). Direct: the same two pipelines,
loaded by diffusers, called with the same seeds, steps and size. Alternating rounds; the
median per side and their ratio. On CUDA too when it is available.

    python benchmarks/kandinsky_overhead.py [--rounds 5] [--steps 25] [--size 64] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PATCHWORK_HOME", tempfile.mkdtemp(prefix="pw-bench-"))
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="pw-bench-hf-")
os.environ.pop("HF_HUB_CACHE", None)

import torch  # noqa: E402

from engine.core import Engine  # noqa: E402
from tests.engine.kandinsky_tiny import load_direct, write_tiny_kandinsky  # noqa: E402


def direct(prior, decoder, args, seed: int, device: str) -> float:
    t0 = time.perf_counter()
    gens = [torch.Generator(device="cpu").manual_seed(seed + i) for i in range(args.n)]
    emb = prior("a red shoe", num_images_per_prompt=args.n, num_inference_steps=args.prior_steps,
                guidance_scale=4.0, generator=gens)
    decoder(image_embeds=emb.image_embeds, negative_image_embeds=emb.negative_image_embeds, height=args.size,
            width=args.size, num_inference_steps=args.steps, guidance_scale=4.0, generator=gens, output_type="np")
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def ours(engine, args, seed: int) -> float:
    t0 = time.perf_counter()
    engine.submit("generate", {"model": "kandinsky-2-2", "prompt": "a red shoe", "seed": seed, "n": args.n,
                               "steps": args.steps, "prior_steps": args.prior_steps, "guidance": 4.0,
                               "prior_guidance": 4.0, "size": args.size, "preview_every": args.preview_every,
                               "save": False}).result(timeout=600)
    return time.perf_counter() - t0


def bench(device: str, args) -> None:
    prior, decoder = (p.to(device) for p in load_direct(os.environ["HF_HOME"]))
    engine = Engine(device=device).start()
    engine.wait_ready()
    try:
        ours(engine, args, 0), direct(prior, decoder, args, 0, device)  # warm-up: loads, allocator, kernels
        a, b = [], []
        for r in range(args.rounds):
            a.append(ours(engine, args, r))
            b.append(direct(prior, decoder, args, r, device))
    finally:
        engine.shutdown()
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"{device}: ours {ma * 1000:.1f} ms, diffusers direct {mb * 1000:.1f} ms, ratio {ma / mb:.3f} "
          f"(n={args.n}, {args.steps} decoder + {args.prior_steps} prior steps, {args.size}px, "
          f"preview every {args.preview_every}, median of {args.rounds})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--prior-steps", type=int, default=10)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--preview-every", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    write_tiny_kandinsky(os.environ["HF_HOME"])
    bench("cpu", args)
    if torch.cuda.is_available():
        bench("cuda", args)
    args.preview_every = 0
    bench("cpu", args)  # the wrapper alone, without the previews it adds


if __name__ == "__main__":
    main()
