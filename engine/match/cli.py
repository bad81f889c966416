"""Headless Match: `python main.py match IMAGE "CAPTION" ["CAPTION"...] [--model ID] [--json]
[--word-maps DIR]`.

Runs the same "match" job as the Match panel through the engine thread and ranks the
captions by the fusion encoder's ITM match probability (the ITC similarity alongside).
--word-maps writes each caption's per-word Grad-CAM overlays, as the panel shows them.
ViLT models have no ITC: their similarity columns print "—" (null in --json).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from engine.cli_support import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, run_one, warn_domain


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    from engine.match.jobs import DEFAULT_ALBEF, MAX_CAPTIONS

    p = sub.add_parser("match", parents=[common], help="score how well captions match an image (ALBEF, ViLT)",
                       description="Align before fuse: the ITC similarity of the unimodal embeddings and the "
                                   "ITM match probability of the fusion encoder, for each caption, best first.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("captions", nargs="+", metavar="CAPTION", help=f"one or more captions (at most {MAX_CAPTIONS})")
    p.add_argument("--model", default=DEFAULT_ALBEF, metavar="ID",
                   help=f"an ALBEF or ViLT model from the catalogue (default {DEFAULT_ALBEF}; see `models`)")
    p.add_argument("--word-maps", metavar="DIR",
                   help="write each caption's per-word Grad-CAM overlays (and the whole caption's) as PNGs here")
    p.add_argument("--json", action="store_true", help="print one JSON object with every caption's scores")


def _slug(word: str) -> str:
    """A word as a file-name part: letters, digits, '-' and '_' kept, the rest '_'."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", word) or "_"


def write_word_maps(res, folder: Path) -> list[list[str]]:
    """Per caption (in the order given): c01-caption.png, c01-w01-<word>.png, ...; the paths written."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, c in enumerate(res.captions, 1):
        files = [folder / f"c{i:02d}-caption.png"]
        Image.fromarray(c.caption_overlay).save(files[0])
        for j, (word, rgb) in enumerate(zip(c.words, c.word_overlays), 1):
            files.append(folder / f"c{i:02d}-w{j:02d}-{_slug(word)}.png")
            Image.fromarray(rgb).save(files[-1])
        written.append([str(f) for f in files])
    return written


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def run(args) -> int:
    from engine.match.jobs import MAX_CAPTIONS

    captions = [c.strip() for c in args.captions if c.strip()]
    if not captions:
        print("error: give at least one non-empty caption", file=sys.stderr)
        return EXIT_USAGE
    if len(captions) > MAX_CAPTIONS:
        print(f"error: at most {MAX_CAPTIONS} captions at a time ({len(captions)} given)", file=sys.stderr)
        return EXIT_USAGE
    res, status = run_one(args.device, "match", {"path": args.image, "captions": captions, "model_id": args.model})
    if res is None:
        return status
    warn_domain(res)
    files = [[] for _ in res.captions]
    if args.word_maps:
        try:
            files = write_word_maps(res, Path(args.word_maps))
        except OSError as exc:
            print(f"error: cannot write the word maps to {args.word_maps}: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    # Best first by the fusion encoder's verdict; the order given breaks ties (a stable sort).
    ranked = sorted(range(len(res.captions)), key=lambda i: -res.captions[i].itm_probability)
    if args.json:
        rows = [{"index": i + 1, "text": c.text, "itm_probability": round(c.itm_probability, 6),
                 "itc_similarity": _round(c.itc_similarity), "itc_probability": _round(c.itc_probability),
                 "words": list(c.words), "word_maps": files[i]} for i, c in ((i, res.captions[i]) for i in ranked)]
        print(json.dumps({"path": res.path, "model": res.model_id, "grid": list(res.grid), "layer": res.layer + 1,
                          "captions": rows, "word_maps": args.word_maps}))
        return EXIT_OK
    where = "layer" if res.family == "vilt" else "fusion layer"  # ViLT: every layer fuses
    print(f"{res.path}: {res.model_id}, word maps from {where} {res.layer + 1}")
    print(f"  {'ITM P(match)':>12}  {'ITC sim':>7}  {'ITC p':>6}  caption")
    for i in ranked:
        c = res.captions[i]
        itc = "      —       —" if c.itc_similarity is None else \
            f"{c.itc_similarity:7.3f}  {100 * c.itc_probability:5.1f}%"
        print(f"  {100 * c.itm_probability:11.1f}%  {itc}  {c.text}")
    if args.word_maps:
        print(f"  wrote {sum(len(f) for f in files)} PNGs to {args.word_maps}")
    return EXIT_OK
