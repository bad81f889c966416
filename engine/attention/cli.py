"""Headless maps: `python main.py attention IMAGE --model ID --method raw|rollout|gradrollout|gradcam|eigencam
[--layer L] [--head H] --out map.png`.

Runs the same "attention" job as the panel through the engine thread and writes the
overlay (what the panel's Export PNG writes). Blocks, heads and patches count from 1 here,
as in the panel; a negative block counts from the end (-1 = the last).
"""
from __future__ import annotations

import argparse
import json
import sys

from engine.cli_support import (EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, out_file_problem, run_one, save_image, say_error,
                        warn_domain)


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    from engine.attention import METHODS
    from engine.attention.maths import FUSIONS
    from engine.attention.overlay import COLORMAPS

    p = sub.add_parser("attention", parents=[common], help="draw an attention map / CAM of an image as a PNG",
                       description="Where does a model look? Raw attention of one block and head, attention "
                                   "rollout, gradient rollout, Grad-CAM or EigenCAM, over the crop the model sees.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--model", required=True, metavar="ID", help="catalogue id (see `models`), e.g. fmnist-vit-tiny")
    p.add_argument("--method", choices=list(METHODS), default="raw")
    p.add_argument("--layer", type=int, metavar="L", help="block 1..depth, or -1 for the last (default: last)")
    p.add_argument("--head", type=int, metavar="H", help="head 1..heads (default: fuse all heads)")
    p.add_argument("--fusion", choices=FUSIONS, default="mean", help="how heads are fused (default mean)")
    p.add_argument("--patch", metavar="R,C", help="show this patch's attention row instead of [CLS]'s (1-based)")
    p.add_argument("--discard-ratio", type=float, default=0.9, metavar="F",
                   help="rollout: share of the weakest attention dropped per block, 0..0.99 (default 0.9)")
    p.add_argument("--class", dest="class_index", type=int, metavar="K",
                   help="class index for gradrollout/gradcam (default: the top-1 class)")
    p.add_argument("--text", help="CLIP models: explain the similarity to this text (gradrollout/gradcam)")
    p.add_argument("--colormap", choices=COLORMAPS, default="inferno")
    p.add_argument("--opacity", type=float, default=0.6, metavar="A", help="0 = image only, 1 = map only")
    p.add_argument("--blocky", action="store_true", help="one flat block per patch instead of smooth upsampling")
    p.add_argument("--out", metavar="FILE.png", help="write the overlay here")
    p.add_argument("--json", action="store_true", help="print the map and facts as JSON")


def _parse_patch(text: str) -> tuple[int, int]:
    r, c = (int(v) for v in text.split(","))
    return r, c


def run(args) -> int:
    if not 0.0 <= args.opacity <= 1.0:
        print("error: --opacity must be between 0 and 1", file=sys.stderr)
        return EXIT_USAGE
    if not 0.0 <= args.discard_ratio < 1.0:
        print("error: --discard-ratio must be at least 0 and below 1", file=sys.stderr)
        return EXIT_USAGE
    if args.layer == 0 or (args.head is not None and args.head < 1):
        print("error: blocks and heads count from 1 (a negative block counts from the end)", file=sys.stderr)
        return EXIT_USAGE
    patch = None
    if args.patch:
        try:
            patch = _parse_patch(args.patch)
        except ValueError:
            print("error: --patch takes ROW,COL counted from 1, e.g. 3,5", file=sys.stderr)
            return EXIT_USAGE
    if args.out and (problem := out_file_problem(args.out)):
        say_error(problem)
        return EXIT_BAD_INPUT
    params = {"path": args.image, "model_id": args.model, "method": args.method, "fusion": args.fusion,
              "discard_ratio": args.discard_ratio, "class_index": args.class_index, "text": args.text,
              "layer": None if args.layer is None else (args.layer - 1 if args.layer > 0 else args.layer),
              "head": None if args.head is None else args.head - 1,
              "query": None if patch is None else (patch[0] - 1, patch[1] - 1)}
    res, status = run_one(args.device, "attention", params)
    if res is None:
        return status
    warn_domain(res)
    m = res.maps[0]
    if args.out:
        from engine.attention.overlay import overlay

        if problem := save_image(overlay(res.image, m.values, args.opacity, args.colormap, not args.blocky), args.out):
            say_error(problem)
            return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps({"path": res.path, "model": res.model_id, "method": res.method, "title": m.title,
                          "grid": list(res.grid), "layer": None if res.layer is None else res.layer + 1,
                          "head": None if res.head is None else res.head + 1, "fusion": res.fusion,
                          "class_index": res.class_index, "class": res.class_label, "peak": m.peak,
                          "map": [[round(float(v), 5) for v in row] for row in m.values],
                          "top": [{"label": p.label, "prob": round(p.prob, 6), "index": p.index} for p in res.top],
                          "crop_box": [round(v, 2) for v in res.crop_box], "token_view": res.token_view,
                          "out": args.out}))
        return EXIT_OK
    print(f"{res.path}: {res.model_id}, {m.title}")
    if res.top:
        print("  top: " + ", ".join(f"{p.label} {100 * p.prob:.1f}%" for p in res.top[:3]))
    print(f"  {res.note}")
    for line in res.token_view.splitlines():
        print(f"  {line}")
    if args.out:
        print(f"  wrote {args.out}")
    return EXIT_OK
