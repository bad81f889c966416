"""Built-in captions for Fashion-MNIST, so CLIP-style recipes have image-text pairs offline.

Each class has several names (paraphrases) and each caption is a template filled with one
of them, e.g. "a photo of a sneaker", "a black and white picture of a running shoe".
Sampling is deterministic: the same (seed, index) always gives the same caption.
"""
from __future__ import annotations

import numpy as np

#: Paraphrases per Fashion-MNIST class, in class-index order.
PARAPHRASES: tuple[tuple[str, ...], ...] = (
    ("t-shirt", "top", "tee", "short-sleeved t-shirt", "casual top"),
    ("pair of trousers", "pair of pants", "pair of jeans", "pair of slacks"),
    ("pullover", "sweater", "jumper", "knitted pullover", "long-sleeved sweater"),
    ("dress", "summer dress", "gown", "frock", "sleeveless dress"),
    ("coat", "jacket", "winter coat", "overcoat", "zip-up jacket"),
    ("sandal", "summer sandal", "strappy sandal", "open-toed shoe", "flip-flop"),
    ("shirt", "button-up shirt", "blouse", "collared shirt", "long-sleeved shirt"),
    ("sneaker", "running shoe", "trainer", "sports shoe", "low-top sneaker"),
    ("bag", "handbag", "purse", "tote bag", "shoulder bag"),
    ("ankle boot", "boot", "short boot", "heeled ankle boot", "leather boot"),
)

#: Caption templates; "{}" is replaced by a class paraphrase with its article.
TEMPLATES: tuple[str, ...] = (
    "a photo of {}.",
    "a picture of {}.",
    "{}.",
    "a black and white photo of {}.",
    "a small grayscale image of {}.",
    "a low-resolution photo of {}.",
    "a product photo of {}.",
    "an image showing {}.",
    "a centred photo of {} on a black background.",
    "a thumbnail of {}.",
)


def with_article(noun: str) -> str:
    """'sneaker' -> 'a sneaker', 'ankle boot' -> 'an ankle boot', 'pair of pants' -> 'a pair of pants'."""
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def captions_for_class(label: int) -> tuple[str, ...]:
    """Every caption the templates can produce for `label` (templates × paraphrases)."""
    return tuple(t.format(with_article(p)) for t in TEMPLATES for p in PARAPHRASES[label])


def prompts(label: int) -> tuple[str, ...]:
    """The zero-shot prompts for `label`: the first template with every paraphrase."""
    return tuple(TEMPLATES[0].format(with_article(p)) for p in PARAPHRASES[label])


def sample_caption(label: int, seed: int, index: int) -> str:
    """One caption for item `index` of a dataset, fixed by (seed, index)."""
    rng = np.random.default_rng([int(seed), int(index)])
    t = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    p = PARAPHRASES[label][int(rng.integers(len(PARAPHRASES[label])))]
    return t.format(with_article(p))


def sample_captions(labels, seed: int = 0) -> list[str]:
    """A caption for each label in `labels` (a sequence of class indices), deterministic by seed."""
    return [sample_caption(int(y), seed, i) for i, y in enumerate(labels)]


def caption_vocabulary() -> tuple[str, ...]:
    """The nouns the built-in Fashion-MNIST captions name the classes with (sorted, lower case)."""
    from engine.data.fashion_mnist import class_names

    words = set()
    for names in PARAPHRASES:
        for name in names:
            words.add(name.split()[-1])  # "pair of trousers" -> "trousers", "running shoe" -> "shoe"
    for name in class_names():  # "T-shirt/top", "Ankle boot", "Trouser"
        for part in name.lower().split("/"):
            words.add(part.split()[-1])
    return tuple(sorted(words))
