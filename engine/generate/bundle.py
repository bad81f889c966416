"""Assemble the built-in tiny unCLIP from three finished runs, and measure it.

    python -m engine.generate.bundle --prior RUN --regression RUN --decoder RUN \
        [--out resources/checkpoints/fmnist-unclip-tiny]

Copies each run's model.safetensors (weights only, no training state) into the bundle as
prior.safetensors, prior_regression.safetensors and decoder.safetensors, writes one
card.json describing every part (recipe, config, the command that trains it, its own
metrics), then generates 10 images for each class prompt with each prior and asks the
built-in fmnist-vit-tiny classifier which class it sees (engine.generate.quality). The
recognition rates, per class and per prior, go into the card, and the 100 images of each
prior into samples-<prior>.png (10 rows, one per class).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

PARTS = {"prior": "prior.safetensors", "regression": "prior_regression.safetensors",
         "decoder": "decoder.safetensors"}
COMMANDS = [
    "python main.py train lit --dataset fashion-mnist   # then export it to resources/checkpoints/fmnist-lit-tiny",
    "python main.py train unclip_prior --dataset fashion-mnist --run-name unclip-prior",
    "python main.py train unclip_prior --dataset fashion-mnist --set kind=regression "
    "--run-name unclip-prior-regression",
    "python main.py train unclip_decoder --dataset fashion-mnist --run-name unclip-decoder",
    "python -m engine.generate.bundle --prior unclip-prior --regression unclip-prior-regression "
    "--decoder unclip-decoder",
]
KEEP = ("recipe", "config", "model_config", "parameters", "command", "metrics", "elapsed_s", "environment",
        "total_steps", "dataset", "status")


def _part(run: Path, dest: Path) -> dict:
    card = json.loads((run / "card.json").read_text(encoding="utf-8"))
    if card.get("status") != "finished":
        raise SystemExit(f"{run} is {card.get('status')}: only finished runs go into the bundle")
    data = (run / "model.safetensors").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    dest.write_bytes(data)
    out = {k: card[k] for k in KEEP if k in card}
    out["history"] = {"eval": card.get("history", {}).get("eval", [])}
    out.update(weights=dest.name, sha256=sha, size_bytes=len(data), trained_from=run.name)
    return out


def contact_sheet(images: np.ndarray, per_row: int) -> np.ndarray:
    """(N, 28, 28) -> (rows·30, per_row·30) uint8 with a 2-px gap: one row per class."""
    n = len(images)
    rows = -(-n // per_row)
    sheet = np.zeros((rows * 30, per_row * 30), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, per_row)
        sheet[r * 30 + 1:r * 30 + 29, c * 30 + 1:c * 30 + 29] = img
    return sheet


def main(argv: list[str] | None = None) -> int:
    import torch

    from engine.generate.gallery import save_png
    from engine.generate.quality import evaluate_tiny_unclip, load_judge
    from engine.generate.unclip import TINY, TinyUnclip, load_decoder, load_prior
    from engine.runs.listing import resolve_run

    ap = argparse.ArgumentParser(prog="python -m engine.generate.bundle", description=__doc__.split("\n\n")[0])
    ap.add_argument("--prior", required=True, help="finished unclip_prior run (kind=diffusion)")
    ap.add_argument("--regression", required=True, help="finished unclip_prior run (kind=regression)")
    ap.add_argument("--decoder", required=True, help="finished unclip_decoder run")
    ap.add_argument("--out", default="resources/checkpoints/fmnist-unclip-tiny")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--per-class", type=int, default=10)
    args = ap.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = {}
    for key, run in (("prior", args.prior), ("regression", args.regression), ("decoder", args.decoder)):
        parts[PARTS[key]] = _part(resolve_run(run), out / PARTS[key])
    card = {"format": "patchwork-bundle/1", "name": out.name, "clip_model": TINY.clip, "parts": parts,
            "commands": COMMANDS, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (out / "card.json").write_text(json.dumps(card, indent=1), encoding="utf-8")

    from engine.catalogue import get
    from engine.catalogue.load import build_model

    clip = build_model(get(TINY.clip))
    pipe = TinyUnclip(None, TINY, parts={"clip": clip, "decoder": load_decoder(out / PARTS["decoder"]),
                                         "priors": {"diffusion": load_prior(out / PARTS["prior"]),
                                                    "regression": load_prior(out / PARTS["regression"])}})
    judge = load_judge("cpu")
    quality = {"judge": "fmnist-vit-tiny", "prompt": "the first zero-shot prompt of each class, e.g. "
               "'a photo of a sneaker.'", "threads": torch.get_num_threads()}
    for prior in ("diffusion", "regression"):
        t0 = time.perf_counter()
        gen = evaluate_tiny_unclip(pipe, prior, per_class=args.per_class, steps=args.steps, guidance=args.guidance,
                                   judge=judge)
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                result, images = stop.value
                break
        result["seconds"] = round(time.perf_counter() - t0, 1)
        quality[prior] = result
        sheet = contact_sheet(images, args.per_class)
        save_png(sheet, {"kind": "contact sheet", "prior": prior, "steps": args.steps, "guidance": args.guidance,
                         "model": out.name, "rows": "one per class, in class order"}, out)
        for old in out.glob(f"samples-{prior}.png"):
            old.unlink()
        newest = max(out.glob("*.png"), key=lambda p: p.stat().st_mtime)
        newest.rename(out / f"samples-{prior}.png")
        print(f"{prior:10s} prior: {100 * result['accuracy']:.0f}% recognised as the prompted class "
              f"({result['seconds']:.0f} s)", flush=True)
        for name, acc in result["per_class"].items():
            print(f"    {name:14s} {100 * acc:5.0f}%")
    card["quality"] = quality
    card["metrics"] = {f"recognised_{p}_prior": quality[p]["accuracy"] for p in ("diffusion", "regression")}
    (out / "card.json").write_text(json.dumps(card, indent=1), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
