"""What generation returns: the results and previews of the Generate jobs (engine/generate/
jobs.py and the Kandinsky pipeline in kandinsky.py), their error, and the timestamp both
write into an image's parameters. Plain data: numpy arrays, never tensors."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from engine.domain_check import DomainWarning
from engine.errors import PatchworkError


class GenerateError(PatchworkError):
    """A generation request that cannot run as asked."""


@dataclass(frozen=True)
class EmbeddingInsight:
    """What an image embedding is close to: the two stages are not a black box."""

    classes: tuple[str, ...]
    class_probs: np.ndarray  # (C,) CLIP's zero-shot softmax over the class prompts
    class_cos: np.ndarray  # (C,) cosine similarity to each class prompt
    neighbours: np.ndarray  # (k, 28, 28) uint8: the nearest training images
    neighbour_labels: tuple[str, ...] = ()
    neighbour_cos: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    text_cos: float | None = None  # cosine to the prompt's own text embedding, when there is one


@dataclass(frozen=True)
class GeneratedImage:
    pixels: np.ndarray  # (H, W) or (H, W, 3) uint8
    seed: int
    params: dict  # what the PNG carries; generating with these (n = 1) gives this image again
    path: str | None = None  # the gallery PNG, when saved


@dataclass(frozen=True)
class GeneratePreview:
    stage: str  # "prior" | "decoder"
    step: int
    total: int
    images: np.ndarray | None  # (n, H, W[, 3]) uint8: the current estimate of the clean images
    insights: tuple[EmbeddingInsight, ...] = ()


@dataclass(frozen=True)
class GenerateResult:
    images: tuple[GeneratedImage, ...]
    insights: tuple[EmbeddingInsight, ...]
    model: str
    params: dict
    seconds: float
    notes: tuple[str, ...] = ()
    domain_warning: DomainWarning | None = None  # the prompt or image lies outside what the model knows


@dataclass(frozen=True)
class InterpolationResult:
    frames: np.ndarray  # (K, H, W) uint8, from a to b
    gif_path: str
    insights: tuple[EmbeddingInsight, ...]
    params: dict
    seconds: float
    domain_warning: DomainWarning | None = None  # an end's prompt or image lies outside what the model knows


def now() -> str:
    """UTC, to the second: the `created` field of a generated image's parameters."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
