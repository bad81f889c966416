"""Prompts against a text model's vocabulary: the words its training captions named things with.

The built-in image-text models (LiT, ALBEF, ViLT, the tiny unCLIP) learned from captions such
as "a photo of a running shoe": ten classes, a few names each. Their text tower (MiniLM)
embeds any sentence, but the image side only ever met those things, so a prompt that names
none of them ("a red sports car") is answered with the nearest garment. The vocabulary is the
head noun of every class name, so modifiers that also describe other things ("sports",
"running", "summer", "leather") do not count as known.
"""
from __future__ import annotations

import re

_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


def _forms(word: str) -> set[str]:
    """A word and its plural / singular forms, so "boots" and "dresses" match "boot" and "dress"."""
    forms = {word, word + "s", word + "es"}
    if word.endswith("es"):
        forms.add(word[:-2])
    if word.endswith("s"):
        forms.add(word[:-1])
    return forms


def known_words(text: str, vocabulary) -> list[str]:
    """The words of `text` that are in `vocabulary` (or a plural of one), in order."""
    vocab = set()
    for w in vocabulary:
        vocab |= _forms(w.lower())
    found = []
    for token in _WORD.findall(text.lower()):
        parts = [token, *token.split("-")] if "-" in token else [token]
        if any(p in vocab for p in parts):
            found.append(token)
    return found
