"""Calibrate the domain checks on the Fashion-MNIST training split and write them down.

    python -m engine.domain_check.calibrate            # print the bounds
    python -m engine.domain_check.calibrate --write    # and write resources/domains/fashion-mnist.json
                                                       # and the "domain" section of every built-in card

Each input statistic gets a one-sided bound at the training split's TAIL quantile, and the
classifier's energy score another, so at most about 3 × TAIL of training images are flagged
(the test split measures the real rate: benchmarks/domain_check.py). Colour has no tail to
measure (every training image is gray); its bound only tolerates re-encoding noise.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from engine.catalogue.domain import DOMAINS_DIR, FASHION_MNIST, FASHION_MNIST_TEXT
from engine.resources import RESOURCES

TAIL = 0.002  # share of training images each one-sided bound leaves outside
CHROMA_MAX = 0.01  # mean saturation a gray picture may pick up from JPEG / colour conversion
CLASSIFIER = "fmnist-vit-tiny"

#: What each built-in card declares besides the calibrated numbers: the catalogue models that
#: fit ordinary photos in its panels, and whether it reads text (then its captions' vocabulary).
DECLARED = {
    "fmnist-vit-tiny": {"for_photos": ["tv-vit-b-16", "timm-vit-base"]},
    "fmnist-mae-tiny": {"for_photos": ["mae-vis-large"]},
    "fmnist-albef-tiny": {"for_photos": ["clip-b16-openai"], "text": True},
    "fmnist-vilt-tiny": {"for_photos": ["clip-b16-openai"], "text": True},
    "fmnist-lit-tiny": {"for_photos": ["clip-b16-openai"], "text": True},
    "fmnist-unclip-tiny": {"for_photos": ["kandinsky-2-2-prior", "kandinsky-2-2-decoder"], "text": True},
    "fmnist-moco-v2-resnet16": {"for_photos": ["timm-vit-base"]},
}


def input_limits(images_uint8: np.ndarray, tail: float = TAIL) -> dict[str, float]:
    """Bounds of the input statistics from (N, 28, 28) uint8 training images."""
    from engine.domain_check.inputs import batch_stats

    s = batch_stats(images_uint8)
    return {"chroma_max": CHROMA_MAX,
            "border_mean_max": round(float(np.quantile(s["border_mean"], 1 - tail)), 5),
            "dark_share_min": round(float(np.quantile(s["dark_share"], tail)), 5)}


def classifier_logits(model_id: str, images_uint8: np.ndarray, batch: int = 1000) -> np.ndarray:
    """(N, K) logits of a catalogue classifier on (N, 28, 28) uint8 images, on the CPU."""
    import torch

    from engine import catalogue
    from engine.catalogue.load import build_model

    entry = catalogue.get(model_id)
    model = build_model(entry)
    mean, std = entry.preprocess.mean[0], entry.preprocess.std[0]
    out = []
    with torch.inference_mode():
        for i in range(0, len(images_uint8), batch):
            x = torch.from_numpy(images_uint8[i:i + batch]).float().div(255).sub(mean).div(std)[:, None]
            out.append(model(x).float().numpy())
    return np.concatenate(out)


def energies(logits: np.ndarray) -> np.ndarray:
    m = logits.max(1, keepdims=True)
    return -(m[:, 0] + np.log(np.exp(logits - m).sum(1)))


def _write_json(path, data: dict, like: str) -> None:
    """Write `data` as the file was formatted (indent 1, its ASCII escaping, its final newline)."""
    ascii_only = json.dumps(json.loads(like), indent=1, ensure_ascii=False) not in (like, like.rstrip("\n"))
    text = json.dumps(data, indent=1, ensure_ascii=ascii_only)
    path.write_text(text + ("\n" if like.endswith("\n") else ""), encoding="utf-8")


def write(limits: dict, energy_max: float, facts: dict) -> None:
    from engine.data.fashion_mnist import class_names
    from engine.data.captions import caption_vocabulary

    DOMAINS_DIR.mkdir(parents=True, exist_ok=True)
    (DOMAINS_DIR / f"{FASHION_MNIST}.json").write_text(json.dumps(
        {"kind": FASHION_MNIST, "text": FASHION_MNIST_TEXT, "limits": limits, "calibration": facts},
        indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for folder, decl in DECLARED.items():
        path = RESOURCES / "checkpoints" / folder / "card.json"
        original = path.read_text(encoding="utf-8")
        card = json.loads(original)
        domain = {"kind": FASHION_MNIST, "text": FASHION_MNIST_TEXT, "classes": list(class_names()),
                  "for_photos": decl["for_photos"]}
        if decl.get("text"):
            domain["vocabulary"] = list(caption_vocabulary())
        if folder == CLASSIFIER:
            domain["energy_max"] = energy_max
        card["domain"] = domain  # the only key touched: weights, checksums and metrics stay as they are
        _write_json(path, card, original)


def main(argv: list[str] | None = None) -> int:
    from engine.data.fashion_mnist import DatasetMissingError, load_fashion_mnist

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write the bounds into resources/")
    args = parser.parse_args(argv)
    try:
        train = load_fashion_mnist("train").images
    except DatasetMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    limits = input_limits(train)
    energy_max = round(float(np.quantile(energies(classifier_logits(CLASSIFIER, train)), 1 - TAIL)), 4)
    facts = {"split": "train", "images": int(len(train)), "tail_per_bound": TAIL,
             "energy_max": {CLASSIFIER: energy_max}, "command": "python -m engine.domain_check.calibrate --write"}
    print(json.dumps({"limits": limits, **facts}, ensure_ascii=False))
    if args.write:
        write(limits, energy_max, facts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
