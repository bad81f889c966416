"""Is this input something the model knows? Verdicts as plain data for panels and the CLI.

A model whose card declares a domain (engine/catalogue/domain.py) gets two checks:
images against the training set's input statistics (inputs.py) plus, for classifiers, the
model's own energy score; prompts against the vocabulary of its training captions
(prompts.py). Either gives a DomainWarning: what the model knows, why this input is outside,
and which catalogue models fit ordinary photos. Results carry it as `domain_warning`.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.catalogue.domain import Domain, domain_of
from engine.catalogue.entry import ModelEntry


@dataclass(frozen=True)
class DomainWarning:
    message: str  # one line: what the model knows, what is off, what to use instead
    model: str  # the model's name
    knows: str  # the domain in words, e.g. "28×28 grayscale clothing on a black background ..."
    reasons: tuple[str, ...]  # e.g. ("this picture is a colour picture",)
    suggest: tuple[tuple[str, str, float], ...] = ()  # (catalogue id, name, size MB) of models that fit photos

    def __str__(self) -> str:
        return self.message


def _suggestions(domain: Domain) -> tuple[tuple[str, str, float], ...]:
    from engine import catalogue
    from engine.errors import PatchworkError

    out = []
    for model_id in domain.for_photos:
        try:
            e = catalogue.get(model_id)
        except PatchworkError:
            continue
        out.append((e.id, e.name, e.size_mb))
    return tuple(out)


def _warning(model: str, knows: str, reasons, suggest) -> DomainWarning:
    tail = f" For ordinary photos use {' or '.join(name for _, name, _ in suggest)}." if suggest else ""
    message = f"{model} knows only {knows}; {'; '.join(reasons)}, so its answer means little.{tail}"
    return DomainWarning(message, model, knows, tuple(reasons), tuple(suggest))


def image_warning(entry: ModelEntry, img=None, *, view01=None, colour: float | None = None,
                  logits=None) -> DomainWarning | None:
    """A warning when a picture lies outside `entry`'s domain, else None.

    img: the decoded PIL image (its statistics are read as the model sees it); or view01, the
    (S, S) gray view on 0..1 already made, with `colour` its source's chroma. logits: a
    classifier's scores for the energy check."""
    from engine.domain_check import inputs

    domain = domain_of(entry)
    if domain is None:
        return None
    if view01 is None:
        stats = inputs.image_stats(img, entry.preprocess)
    else:
        stats = inputs.view_stats(view01, colour if colour is not None else 0.0)
    why = inputs.reasons(stats, dict(domain.limits))
    if not why and logits is not None and domain.energy_max is not None:
        if inputs.energy(logits) > domain.energy_max:
            why.append("gets no clear class from the model (its energy score is unusually high)")
    if not why:
        return None
    return _warning(entry.name, domain.text, ["this picture " + " and ".join(why)], _suggestions(domain))


def prompt_warning(entry: ModelEntry, texts, noun: str = "prompt") -> DomainWarning | None:
    """A warning when a prompt (or captions of a list: noun "caption") name nothing the model learned."""
    from engine.domain_check.prompts import known_words

    domain = domain_of(entry)
    if domain is None or not domain.vocabulary:
        return None
    texts = [texts] if isinstance(texts, str) else [t for t in texts if t.strip()]
    unknown = [t for t in texts if t.strip() and not known_words(t, domain.vocabulary)]
    if not unknown:
        return None
    what = f"the {noun}" if len(texts) == 1 else (
        f"every {noun}" if len(unknown) == len(texts) else f"{len(unknown)} of {len(texts)} {noun}s")
    verb = "names" if len(texts) == 1 or len(unknown) == len(texts) else "name"
    examples = ", ".join(domain.vocabulary[:6])
    return _warning(entry.name, domain.text, [f"{what} {verb} none of the things it learned ({examples}, …)"],
                    _suggestions(domain))


def combine(*warnings: DomainWarning | None) -> DomainWarning | None:
    """One warning for a result with several inputs (a Match image and its captions)."""
    found = [w for w in warnings if w is not None]
    if len(found) <= 1:
        return found[0] if found else None
    first = found[0]
    reasons = list(dict.fromkeys(r for w in found for r in w.reasons))  # in order, each once
    return _warning(first.model, first.knows, reasons, first.suggest)
