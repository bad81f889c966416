"""Near-duplicate groups: precision and recall on planted duplicates.

The set: every distinct photo that ships offline (scikit-image's sample photos, scikit-learn's
two JPEGs, matplotlib's sample photos when installed), plus five planted near-duplicates of
each: resized to half, re-encoded as JPEG at quality 30, cropped by 10 % (left and top),
mirrored, brightened by 30 %. Left out of the distinct set: motorcycle_right (a stereo twin
of motorcycle_left: a burst shot, which is meant to group) and chessboard_GRAY (the same
picture as chessboard_RGB).

Scored on pairs: a true pair is two files made from the same photo; a found pair is two
files in the same group. Precision = found and true / found, recall = found and true / true.
Also counted: groups that join two different photos of the sample set (goal: none). The
same index is grouped at several thresholds, and by each signal alone (embedding only:
HASH_WEIGHT 0; hash only: HASH_WEIGHT 1) and their plain mean (0.5) as the references.
Note: the default weight and threshold were chosen on this very set (there is no other
labelled set offline), so read the sweep's margins, not just the default's row.

    python benchmarks/duplicates_quality.py [--keep DIR]
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PATCHWORK_HOME", tempfile.mkdtemp(prefix="pw-dups-"))

from PIL import Image, ImageEnhance  # noqa: E402

SKIP = {"motorcycle_right.png", "chessboard_GRAY.png", "lbpcascade_frontalface_opencv.xml"}


def sample_photos() -> list[Path]:
    """Every offline sample photo (RGB or grey, >= 128 px)."""
    found = []
    for pkg, sub in (("skimage", "data"), ("sklearn", "datasets/images"), ("matplotlib", "mpl-data/sample_data")):
        spec = importlib.util.find_spec(pkg)
        if spec is None:
            continue
        folder = Path(list(spec.submodule_search_locations)[0]) / sub
        for p in sorted(folder.glob("*")):
            if p.suffix.lower() in (".png", ".jpg", ".jpeg") and p.name not in SKIP:
                try:
                    with Image.open(p) as im:
                        if min(im.size) >= 128:
                            found.append(p)
                except OSError:
                    continue
    return found


def plant(src: Path, folder: Path, stem: str) -> list[Path]:
    """The photo (as PNG) and its five near-duplicates."""
    img = Image.open(src).convert("RGB")
    w, h = img.size
    out = {f"{stem}__orig.png": img,
           f"{stem}__half.jpg": img.resize((w // 2, h // 2), Image.Resampling.LANCZOS),
           f"{stem}__crop10.jpg": img.crop((int(0.1 * w), int(0.1 * h), w, h)),
           f"{stem}__mirror.jpg": img.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
           f"{stem}__bright.jpg": ImageEnhance.Brightness(img).enhance(1.3)}
    paths = []
    for name, im in out.items():
        path = folder / name
        im.save(path, quality=90) if name.endswith(".jpg") else im.save(path)
        paths.append(path)
    path = folder / f"{stem}__q30.jpg"
    img.save(path, quality=30)
    return paths + [path]


def score(groups, files: list[Path]) -> dict:
    source = {str(p): p.name.split("__")[0] for p in files}
    true = {frozenset(pair) for pair in itertools.combinations(sorted(source), 2)
            if source[pair[0]] == source[pair[1]]}
    found = set()
    joined = 0
    for g in groups:
        paths = [ph.path for ph in g.photos]
        found |= {frozenset(pair) for pair in itertools.combinations(sorted(paths), 2)}
        joined += len({source[p] for p in paths}) > 1
    hit = len(found & true)
    return {"precision": hit / len(found) if found else 1.0, "recall": hit / len(true) if true else 1.0,
            "groups": len(groups), "joined_distinct": joined, "found_pairs": len(found), "true_pairs": len(true)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", default=None, help="build the folder here (kept) instead of a temp folder")
    ap.add_argument("--model", default=None, metavar="ID", help="embedding model (default: search's default)")
    args = ap.parse_args()
    from engine.collection import duplicates
    from engine.core import Engine
    from engine.jobs import Priority
    from engine.search.embedders import DEFAULT_SEARCH_MODEL

    model = args.model or DEFAULT_SEARCH_MODEL

    folder = Path(args.keep or tempfile.mkdtemp(prefix="pw-dups-photos-"))
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    photos = sample_photos()
    for src in photos:
        files += plant(src, folder, src.stem)
    print(f"{len(photos)} distinct photos, {len(files)} files (5 planted near-duplicates each); vectors: {model}")
    eng = Engine(device="cpu").start()
    try:
        eng.wait_ready(120)
        eng.submit("index_folder", {"folder": str(folder), "model_id": model},
                   priority=Priority.BACKGROUND).result(1200)
        default = (duplicates.DEFAULT_THRESHOLD, duplicates.HASH_WEIGHT)
        print(f"{'threshold':>9} {'hash weight':>11} {'precision':>9} {'recall':>6} {'groups':>6} {'joined':>6}")
        rows = [(t, default[1]) for t in (0.65, 0.7, 0.75, default[0], 0.85, 0.9)]
        rows += [(0.8, 0.5), (0.9, 0.0), (0.95, 0.0), (0.8, 1.0), (0.85, 1.0)]  # mean; embedding only; hash only
        for threshold, weight in rows:
            duplicates.HASH_WEIGHT = weight  # the job runs on the engine thread of this process
            res = eng.submit("collection_duplicates",
                             {"folder": str(folder), "model_id": model, "threshold": threshold}).result(600)
            s = score(res.groups, files)
            mark = "  <- default" if (threshold, weight) == default else ""
            print(f"{threshold:9.2f} {weight:11.1f} {s['precision']:9.3f} {s['recall']:6.3f} {s['groups']:6d} "
                  f"{s['joined_distinct']:6d}{mark}")
            if (threshold, weight) == default:
                missed = _missed(res.groups, files)
                if missed:
                    print("   missed at the default:", ", ".join(missed[:12]))
                print(f"   {res.photos} photos grouped in {res.seconds:.2f} s (hashes cached)")
        duplicates.HASH_WEIGHT = default[1]
    finally:
        eng.shutdown()
    return 0


def _missed(groups, files: list[Path]) -> list[str]:
    grouped = {ph.path for g in groups for ph in g.photos}
    return [p.name for p in files if str(p) not in grouped]


if __name__ == "__main__":
    raise SystemExit(main())
