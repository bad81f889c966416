"""Headless MAE: `python main.py mae IMAGE --model ID --mask-ratio 0.75 --seed 0 --out views.png`.

Runs the same "mae" job as the panel through the engine thread, writes the five views side
by side, and prints the hidden-patch error against the mean-of-visible-patches baseline.
"""
from __future__ import annotations

import argparse
import json
import sys

from engine.cli_support import (EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, out_file_problem, run_one, save_image, say_error,
                        warn_domain)


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    from engine.mae import DEFAULT_MAE
    from engine.mae.masks import MODES

    p = sub.add_parser("mae", parents=[common], help="mask an image, reconstruct it with an MAE, save the views",
                       description="Hide patches of IMAGE, let a masked autoencoder fill them in, and write "
                                   "original | masked | reconstruction | reconstruction + visible | error per patch.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--model", default=DEFAULT_MAE, metavar="ID",
                   help=f"an MAE from the catalogue (default {DEFAULT_MAE}; see `models`)")
    p.add_argument("--mask-ratio", type=float, default=0.75, metavar="R", help="share of patches hidden, 0..0.95")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same mask")
    p.add_argument("--mode", choices=[m for m in MODES if m != "painted"], default="random",
                   help="which patches are hidden: random, a regular grid, or random blocks")
    p.add_argument("--keep", metavar="I,J,...",
                   help="keep exactly these patch indices (row-major) visible, hiding the rest (overrides --mode)")
    p.add_argument("--out", metavar="FILE.png", help="write the five views side by side here")
    p.add_argument("--json", action="store_true", help="print the numbers and token order as JSON")


def run(args) -> int:
    if not 0.0 <= args.mask_ratio <= 0.95:
        say_error(f"--mask-ratio must be between 0 and 0.95 (got {args.mask_ratio})")
        return EXIT_USAGE
    if not 0 <= args.seed < 2**63:
        say_error(f"--seed must be between 0 and 2**63 - 1 (got {args.seed})")
        return EXIT_USAGE
    if args.out and (problem := out_file_problem(args.out)):
        say_error(problem)
        return EXIT_BAD_INPUT
    params = {"path": args.image, "model_id": args.model, "mask_ratio": args.mask_ratio, "seed": args.seed,
              "mode": args.mode}
    if args.keep:
        try:
            keep = sorted({int(v) for v in args.keep.split(",") if v.strip()})
        except ValueError:
            print("error: --keep takes comma-separated patch indices, e.g. 0,5,12", file=sys.stderr)
            return EXIT_USAGE
        length = _num_patches(args.model)
        if length is None:
            print(f"error: {args.model} is not an MAE in the catalogue", file=sys.stderr)
            return EXIT_USAGE
        if not keep or keep[0] < 0 or keep[-1] >= length:
            print(f"error: --keep indices must lie in 0..{length - 1}", file=sys.stderr)
            return EXIT_USAGE
        params.update(mode="painted", painted=[i in keep for i in range(length)])
    res, status = run_one(args.device, "mae", params)
    if res is None:
        return status
    warn_domain(res)
    v = res.views
    if args.out:
        from engine.mae.views import side_by_side

        if problem := save_image(side_by_side(v), args.out):
            say_error(problem)
            return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps({"path": res.path, "model": res.model_id, "mode": res.mode, "seed": res.seed,
                          "mask_ratio": v.mask_ratio, "grid": list(v.grid), "patch_size": v.patch_size,
                          "len_keep": v.len_keep, "ids_shuffle": v.ids_shuffle.tolist(),
                          "ids_restore": v.ids_restore.tolist(), "masked_mse": v.masked_mse,
                          "visible_mse": v.visible_mse, "baseline_mse": v.baseline_mse, "verdict": v.verdict,
                          "norm_pix": v.norm_pix,
                          "note": v.note, "out": args.out}))
        return EXIT_OK
    h, w = v.grid
    print(f"{res.path}: {res.model_id}, {res.mode} mask, seed {res.seed}")
    print(f"  {h}×{w} = {h * w} patches of {v.patch_size} px; the encoder saw {v.len_keep} "
          f"({100 * v.len_keep / (h * w):.0f}%), mask ratio {v.mask_ratio:.3f}")
    if v.masked_mse is not None:
        print(f"  hidden-patch MSE {v.masked_mse:.5f}  (mean-of-visible-patches baseline {v.baseline_mse:.5f}: "
              f"{v.verdict})")
    print(f"  {v.note}")
    if args.out:
        print(f"  wrote {args.out}")
    return EXIT_OK


def _num_patches(model_id: str) -> int | None:
    """L of a catalogue MAE from its entry (options or its architecture's defaults)."""
    from dataclasses import replace

    from engine import catalogue
    from engine.errors import PatchworkError
    from engine.models.builders import mae_overrides
    from engine.models.mae import CONFIGS

    try:
        entry = catalogue.get(model_id)
    except PatchworkError:
        return None
    if entry.family != "mae":
        return None
    cfg = replace(CONFIGS.get(entry.arch, CONFIGS["mae_vit_large_patch16"]), **mae_overrides(entry))
    return cfg.num_patches
