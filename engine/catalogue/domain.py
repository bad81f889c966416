"""What a model knows: the "domain" a card declares, read from the card beside its weights.

A built-in card says, e.g. for the Fashion-MNIST ViT:

    "domain": {"kind": "fashion-mnist", "text": "28×28 grayscale clothing ...",
               "classes": [...], "for_photos": ["tv-vit-b-16", "timm-vit-base"],
               "energy_max": -3.1}

and text models add "vocabulary": the words their captions used. The input checks shared by
every model of a kind (how far a picture may stray from the training set's statistics) live
once in resources/domains/<kind>.json. Runs trained here on Fashion-MNIST get that domain
from their dataset, so their panels warn the same way. Path reads only: no torch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.catalogue.entry import ModelEntry
from engine.resources import RESOURCES

DOMAINS_DIR = RESOURCES / "domains"
FASHION_MNIST = "fashion-mnist"
FASHION_MNIST_TEXT = "28×28 grayscale clothing on a black background (Fashion-MNIST, 10 classes)"
#: Image-text families whose prompts are checked against the caption vocabulary.
TEXT_FAMILIES = ("clip", "albef", "vilt", "unclip-prior", "unclip-decoder")


@dataclass(frozen=True)
class Domain:
    kind: str  # "fashion-mnist"
    text: str  # what the model knows, in words for a banner
    classes: tuple[str, ...] = ()
    vocabulary: tuple[str, ...] = ()  # text models: the words their training captions named things with
    for_photos: tuple[str, ...] = ()  # catalogue ids of models that fit ordinary photos
    energy_max: float | None = None  # classifiers: the energy -logsumexp(logits) above which an input is unusual
    limits: tuple[tuple[str, float], ...] = ()  # input-statistics bounds of the kind (resources/domains)

    def limit(self, name: str) -> float | None:
        return dict(self.limits).get(name)


def card_path(entry: ModelEntry) -> Path | None:
    """The card.json that describes `entry`'s weights (resources and runs keep one beside them)."""
    src = entry.source
    if src.kind == "resources":
        return (RESOURCES / src.location).with_name("card.json")
    if src.kind == "run":
        return Path(src.location).with_name("card.json")
    return None


@lru_cache(maxsize=8)
def kind_limits(kind: str) -> tuple[tuple[str, float], ...]:
    """The calibrated input-statistics bounds of a domain kind ({} when none were calibrated)."""
    path = DOMAINS_DIR / f"{kind}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    return tuple((str(k), float(v)) for k, v in (data.get("limits") or {}).items())


@lru_cache(maxsize=64)
def _read(path: str, mtime_ns: int, size: int) -> dict | None:
    """The card's JSON, read again whenever the file changes (its time or size)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _card(entry: ModelEntry) -> dict | None:
    path = card_path(entry)
    if path is None or not path.is_file():
        return None
    st = path.stat()
    return _read(str(path), st.st_mtime_ns, st.st_size)


def domain_of(entry: ModelEntry) -> Domain | None:
    """The declared domain of `entry`, or None (a model for ordinary photos, or one we know nothing about)."""
    card = _card(entry)
    if not card:
        return None
    d = card.get("domain")
    if d is None:
        dataset = card.get("dataset") or {}
        if dataset.get("name") != FASHION_MNIST:
            return None
        # A run trained here on Fashion-MNIST: the same domain as the built-ins, its captions' words.
        from engine.data.captions import caption_vocabulary

        d = {"kind": FASHION_MNIST, "text": FASHION_MNIST_TEXT, "classes": dataset.get("classes") or (),
             "vocabulary": caption_vocabulary() if entry.family in TEXT_FAMILIES else ()}
    return Domain(kind=str(d["kind"]), text=str(d.get("text", d["kind"])), classes=tuple(d.get("classes") or ()),
                  vocabulary=tuple(d.get("vocabulary") or ()), for_photos=tuple(d.get("for_photos") or ()),
                  energy_max=None if d.get("energy_max") is None else float(d["energy_max"]),
                  limits=kind_limits(str(d["kind"])))
