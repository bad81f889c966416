"""How well the domain check tells Fashion-MNIST from photos: false alarms and hits.

    python benchmarks/domain_check.py [--crops 12] [--photos DIR ...]

False-alarm rate: the share of the Fashion-MNIST TEST split (never used to calibrate) that the
built-in ViT's check calls out of domain (goal ≤ 1 %). Hit rate: the share of colour photos it
catches (goal ≥ 95 %): scikit-image's and scikit-learn's sample photos, matplotlib's if it is
installed, any JPEG/PNG in --photos folders, and seeded random crops and resizes of each.
Grayscale photos (scikit-image's camera, coins, moon, ... and its LFW faces) are reported apart:
they are outside the domain too but have no colour to give them away.

The same bounds are compared with the model-only scores on their own (energy, and the max
softmax probability as the classic baseline), each cut at the same training quantile.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COLOUR_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                 "motorcycle_right.png", "hubble_deep_field.jpg", "retina.jpg", "ihc.png")
GRAY_PHOTOS = ("camera.png", "coins.png", "moon.png", "page.png", "text.png", "clock_motion.png", "brick.png",
               "grass.png", "gravel.png", "cell.png", "microaneurysms.png")


def colour_photo_files(extra_dirs) -> list[Path]:
    import skimage

    data = Path(skimage.__file__).parent / "data"
    files = [data / n for n in COLOUR_PHOTOS if (data / n).is_file()]
    try:
        import sklearn

        files += sorted((Path(sklearn.__file__).parent / "datasets" / "images").glob("*.jpg"))
    except ImportError:
        pass
    try:
        from matplotlib import cbook

        files.append(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    except Exception:  # matplotlib absent, or its sample data not installed
        pass
    for d in extra_dirs:
        files += sorted(p for p in Path(d).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return files


def crops(img, n: int, rng) -> list:
    """n random crops (10-100 % of the area, aspect 3:4..4:3) resized to 48-512 px on the long side."""
    from PIL import Image

    out = []
    w, h = img.size
    for _ in range(n):
        area = rng.uniform(0.1, 1.0) * w * h
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = min(w, int(round((area * aspect) ** 0.5))), min(h, int(round((area / aspect) ** 0.5)))
        left, top = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
        c = img.crop((left, top, left + cw, top + ch))
        side = int(rng.integers(48, 513))
        scale = side / max(cw, ch)
        out.append(c.resize((max(1, round(cw * scale)), max(1, round(ch * scale))), Image.Resampling.BILINEAR))
    return out


def verdicts(entry, model, images) -> dict[str, np.ndarray]:
    """Per image: flagged by the input statistics, the energy bound, the whole check (as the app runs it)."""
    import torch

    from engine.catalogue.domain import domain_of
    from engine.domain_check import image_warning, inputs
    from engine.preprocess import to_input

    domain = domain_of(entry)
    stats, energy, full, logits_all = [], [], [], []
    for img in images:
        x = torch.from_numpy(to_input(img, entry.preprocess)).unsqueeze(0)
        with torch.inference_mode():
            logits = model(x).float()[0].numpy()
        stats.append(bool(inputs.reasons(inputs.image_stats(img, entry.preprocess), dict(domain.limits))))
        energy.append(inputs.energy(logits) > domain.energy_max)
        full.append(image_warning(entry, img, logits=logits) is not None)
        logits_all.append(logits)
    return {"stats": np.array(stats), "energy": np.array(energy), "full": np.array(full),
            "logits": np.array(logits_all)}


def test_split_verdicts(entry, images_uint8) -> dict[str, np.ndarray]:
    """The same three verdicts for (N, 28, 28) uint8 images, batched: Fashion-MNIST is already the
    28×28 gray view, so batch_stats gives what image_stats gives (tests/engine/test_domain_check.py)."""
    from engine.catalogue.domain import domain_of
    from engine.domain_check.calibrate import classifier_logits, energies
    from engine.domain_check.inputs import batch_stats

    limits = dict(domain_of(entry).limits)
    s = batch_stats(images_uint8)
    stats = ((s["chroma"] > limits["chroma_max"]) | (s["border_mean"] > limits["border_mean_max"])
             | (s["dark_share"] < limits["dark_share_min"]))
    logits = classifier_logits(entry.id, images_uint8)
    energy = energies(logits) > domain_of(entry).energy_max
    return {"stats": stats, "energy": energy, "full": stats | energy, "logits": logits}


def msp(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(1, keepdims=True)).max(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crops", type=int, default=12, help="random crops per photo (default 12)")
    parser.add_argument("--photos", nargs="*", default=[], help="more folders of colour photos")
    parser.add_argument("--test", type=int, default=10_000, help="Fashion-MNIST test images (default all)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import skimage
    import torch
    from PIL import Image

    from engine import catalogue
    from engine.catalogue.domain import domain_of
    from engine.catalogue.load import build_model
    from engine.data.fashion_mnist import load_fashion_mnist
    from engine.domain_check.calibrate import TAIL, classifier_logits

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    entry = catalogue.get("fmnist-vit-tiny")
    model = build_model(entry)
    domain = domain_of(entry)
    print(f"bounds (resources/domains/fashion-mnist.json): {dict(domain.limits)}, energy_max {domain.energy_max}")
    t0 = time.perf_counter()
    train = load_fashion_mnist("train").images
    msp_min = float(np.quantile(msp(classifier_logits(entry.id, train)), TAIL))  # the baseline, cut alike

    test = load_fashion_mnist("test").images[:args.test]
    fm = test_split_verdicts(entry, test)
    check = verdicts(entry, model, [Image.fromarray(a).convert("RGB") for a in test[:200]])
    assert np.array_equal(check["full"], fm["full"][:200])  # the batched path agrees with the app's
    rng = np.random.default_rng(0)
    files = colour_photo_files(args.photos)
    originals = [Image.open(f).convert("RGB") for f in files]
    photos = originals + [c for img in originals for c in crops(img, args.crops, rng)]
    ph = verdicts(entry, model, photos)
    data = Path(skimage.__file__).parent / "data"
    gray_names = [n for n in GRAY_PHOTOS if (data / n).is_file()]
    gr = verdicts(entry, model, [Image.open(data / n).convert("RGB") for n in gray_names])
    faces = verdicts(entry, model, [Image.fromarray((f * 255).astype(np.uint8)).convert("RGB")
                                    for f in np.load(data / "lfw_subset.npy")])

    def rate(v):
        return f"{100 * v.mean():5.1f} %"

    print(f"\n{len(test):,} Fashion-MNIST test images; {len(photos)} colour photos ({len(files)} photos + "
          f"{args.crops} crops each: {', '.join(f.name for f in files)}); {len(gray_names)} grayscale scikit-image "
          f"photos; {len(faces['full'])} LFW faces (25×25 gray crops)\n")
    columns = ("false alarms: FMNIST test", "hits: colour photos", "hits: gray photos", "hits: LFW faces")
    print(f"{'check':46s}" + "".join(f"{c:>27s}" for c in columns))
    rows = [("input statistics (colour, border, background)", "stats"), ("energy score alone", "energy"),
            ("max softmax probability alone (baseline)", "msp"), ("the app's check: statistics or energy", "full")]
    for title, key in rows:
        groups = (fm, ph, gr, faces)
        flags = [msp(x["logits"]) < msp_min for x in groups] if key == "msp" else [x[key] for x in groups]
        print(f"{title:46s}" + "".join(f"{rate(f):>27s}" for f in flags))
    missed = [files[i].name for i in range(len(files)) if not ph["full"][i]]
    missed_gray = [n for n, hit in zip(gray_names, gr["full"]) if not hit]
    print(f"\nwhole colour photos missed: {', '.join(missed) or 'none'}; gray photos missed: "
          f"{', '.join(missed_gray) or 'none'}; {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
