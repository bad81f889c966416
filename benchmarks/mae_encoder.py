"""Encoding only the visible patches: encoder and training-step time at a 75% vs a 0% mask ratio.

The MAE paper claims a 3x or larger training speed-up from feeding the encoder only the
~25% visible patches. Same model, same images, same device; only the mask ratio changes.
Weights are random (time does not depend on them), so no download is needed.

    python benchmarks/mae_encoder.py [--arch mae_vit_base_patch16] [--batch 8] [--repeats 5] [--device cpu]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    import torch

    from engine.models import mae

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mae_vit_base_patch16", choices=sorted(mae.FACTORIES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = mae.FACTORIES[args.arch]().to(args.device)
    c, s = model.config.in_chans, model.config.img_size
    x = torch.randn(args.batch, c, s, s, device=args.device)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    print(f"{args.arch}: {model.num_patches} patches, batch {args.batch}, {args.device}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")

    results = {}
    for ratio in (0.0, 0.75):
        def encode():
            with torch.no_grad():
                model.forward_encoder(x, ratio)

        def train_step():
            model.zero_grad(set_to_none=True)
            loss = model(x, ratio)[0]
            loss.backward()

        model.eval()
        enc = timed(encode, args.repeats, sync)
        model.train()
        step = timed(train_step, args.repeats, sync)
        results[ratio] = (enc, step)
        kept = mae.num_kept(model.num_patches, ratio)
        print(f"  mask {ratio:.2f} ({kept:3d} tokens to the encoder): encoder {1000 * enc:8.1f} ms   "
              f"training step (fwd+bwd, encoder+decoder) {1000 * step:8.1f} ms")
    (e0, s0), (e75, s75) = results[0.0], results[0.75]
    print(f"  speed-up from masking 75%: encoder x{e0 / e75:.2f}, training step x{s0 / s75:.2f} "
          f"(paper: 3x or more for training)")


if __name__ == "__main__":
    main()
