"""ViT-B/16 forward: our wrapper vs the library directly, and the cost of capturing attention.

Same weights on every path (random ViT-B/16: timing does not depend on the values):
  * timm vit_base_patch16_224 and torchvision vit_b_16 called directly (fused SDPA);
  * through Patchwork's adapter (what the Attention panel's plain path calls);
  * the capturing path: explicit attention recorded for every block (the forward alone,
    and `capture()` with the maps copied out to numpy, which is what a map request costs).
Goals from the issue: wrapper ≤ 1.05× direct; capture ≤ 1.3× a plain forward.
Runs interleave the paths and report medians.

    python benchmarks/attention_capture.py [--runs 7] [--threads 2] [--batch 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import timm
    import torch
    from torchvision.models import vit_b_16

    from engine.attention.adapters import adapt
    from engine.attention.capture import capturing
    from engine.attention.compute import capture

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 224, 224, device=args.device)
    models = {"timm": timm.create_model("vit_base_patch16_224", pretrained=False).eval().to(args.device),
              "torchvision": vit_b_16().eval().to(args.device)}
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    print(f"ViT-B/16, batch {args.batch}, {args.device}, {torch.get_num_threads()} threads, {args.runs} runs, "
          f"torch {torch.__version__}, timm {timm.__version__}")
    for name, model in models.items():
        adapter = adapt(model)
        mods = adapter.attention_modules()

        def direct():
            with torch.inference_mode():
                model(x)
            sync()

        def wrapper():
            with torch.inference_mode():
                adapter.scores(x)
            sync()

        def capturing_forward():
            with torch.no_grad(), capturing(mods):
                adapter.scores(x)
            sync()

        def capture_to_numpy():
            capture(adapter, x[:1])
            sync()

        paths = {"direct": direct, "wrapper": wrapper, "capturing forward": capturing_forward,
                 "capture() to numpy": capture_to_numpy}
        for fn in paths.values():  # warm-up
            fn()
        times = {k: [] for k in paths}
        for _ in range(args.runs):
            for k, fn in paths.items():
                times[k].append(timed(fn))
        med = {k: statistics.median(v) for k, v in times.items()}
        base = med["direct"]
        print(f"\n{name}:")
        for k, v in med.items():
            print(f"  {k:20s} {1000 * v:8.1f} ms   ×{v / base:.3f}")
        print(f"  wrapper / direct = ×{med['wrapper'] / base:.3f} (goal ≤ 1.05); "
              f"capture / plain = ×{med['capturing forward'] / base:.3f} (goal ≤ 1.3)")


if __name__ == "__main__":
    main()
