"""Engine requests behind the Train panel (besides "train" itself): what recipes exist and
what they take, which backbones can be probed, the runs list, a run's curves, deleting a run.

All results are plain data, so the GUI builds its forms and lists without importing torch.
"""
from __future__ import annotations

import ast
import inspect
from dataclasses import MISSING, dataclass, fields

from engine.errors import TrainingError

#: Dataset kinds each known recipe trains on (a recipe class may say `dataset_kinds` itself).
DATASET_KINDS = {
    "supervised": ("fashion-mnist", "classes"),
    "moco_v2": ("fashion-mnist", "classes", "unlabelled"),
    "moco_v3": ("fashion-mnist", "classes", "unlabelled"),
    "linear_probe": ("fashion-mnist", "classes"),
    "finetune": ("fashion-mnist", "classes"),
    "mae": ("fashion-mnist", "unlabelled"),
    "clip": ("fashion-mnist", "captions"),
    "lit": ("fashion-mnist", "captions"),
    "albef": ("fashion-mnist",),
}
ALL_KINDS = ("fashion-mnist", "classes", "unlabelled", "captions")
#: Recipes that start from a catalogue backbone (their config has a "backbone" model id).
BACKBONE_RECIPES = ("linear_probe", "finetune")


@dataclass(frozen=True)
class FieldInfo:
    name: str
    type: str  # "int" | "float" | "bool" | "str"
    default: object
    help: str = ""  # the comment beside the field in the recipe's config


@dataclass(frozen=True)
class RecipeInfo:
    name: str
    available: bool
    summary: str = ""  # the first line of the recipe module's docstring
    error: str = ""  # why it is not available
    dataset_kinds: tuple[str, ...] = ALL_KINDS
    fields: tuple[FieldInfo, ...] = ()
    uses_backbone: bool = False  # takes a catalogue model id as `backbone`
    choices: dict | None = None  # field -> allowed values, where known


def _comments(cls) -> dict[str, str]:
    """name -> the trailing comment of `name: type = value  # comment` in cls and its bases."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        for line in lines:
            code, sep, comment = line.partition("  # ")
            if not sep or ":" not in code:
                continue
            try:
                node = ast.parse(code.strip())
            except SyntaxError:
                continue
            stmt = node.body[0] if node.body else None
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                out[stmt.target.id] = comment.strip()
    return out


def recipe_info(name: str) -> RecipeInfo:
    from engine.train.recipes import recipe_class

    try:
        cls = recipe_class(name)
    except Exception as exc:  # noqa: BLE001 - a recipe whose module is missing is listed as unavailable
        return RecipeInfo(name, False, error=f"{type(exc).__name__}: {exc}",
                          dataset_kinds=DATASET_KINDS.get(name, ALL_KINDS))
    config = cls.Config
    help_text = _comments(config)
    out = []
    for f in fields(config):
        default = f.default if f.default is not MISSING else (f.default_factory() if f.default_factory is not MISSING
                                                               else None)
        kind = type(default).__name__ if isinstance(default, (bool, int, float, str)) else "str"
        out.append(FieldInfo(f.name, kind, default, help_text.get(f.name, "")))
    doc = inspect.getmodule(cls).__doc__ or cls.__doc__ or ""
    choices = {}
    modules = [inspect.getmodule(k) for k in (*cls.__mro__, *config.__mro__)]
    for module_attr, field_name in (("BACKBONES", "backbone"), ("PRESETS", "model"), ("PRESETS", "vit_model")):
        if field_name in choices or name in BACKBONE_RECIPES or not any(f.name == field_name for f in out):
            continue
        for module in modules:
            values = getattr(module, module_attr, None)
            if values:
                choices[field_name] = tuple(values)
                break
    return RecipeInfo(name, True, summary=doc.strip().splitlines()[0] if doc.strip() else "",
                      dataset_kinds=tuple(getattr(cls, "dataset_kinds", DATASET_KINDS.get(name, ALL_KINDS))),
                      fields=tuple(out), uses_backbone=name in BACKBONE_RECIPES, choices=choices or None)


def recipes_job(ctx) -> list[RecipeInfo]:
    """Every registered recipe, with its settings (name, type, default, help)."""
    from engine.train.recipes import RECIPES

    return [recipe_info(name) for name in RECIPES]


@dataclass(frozen=True)
class BackboneInfo:
    id: str
    name: str
    family: str
    state: str  # the catalogue state: ready, needs download, ...
    size_mb: float
    input_size: int
    trained_here: bool


def backbones_job(ctx) -> list[BackboneInfo]:
    """Catalogue models with a feature extractor (what a probe or fine-tune can start from)."""
    from engine.catalogue import entries
    from engine.catalogue.locate import state_of
    from engine.train.features import has_feature_extractor

    out = []
    for e in entries():
        if has_feature_extractor(e):
            out.append(BackboneInfo(e.id, e.name, e.family, state_of(e).state, e.size_mb, e.preprocess.input_size,
                                    e.source.kind in ("run", "resources")))
    # Usable ones first, Patchwork's own (small, trained here) before the big downloads.
    return sorted(out, key=lambda b: (b.state not in ("ready", "user file"), not b.trained_here))


def runs_job(ctx):
    """The runs list (engine.runs.listing.RunInfo rows), newest first."""
    from engine.runs.listing import list_runs

    return list_runs()


def run_history_job(ctx, run: str, limit: int = 2000) -> dict:
    """A run's logged records for the plots: {"name", "train": [...], "eval": [...], "info"}."""
    from engine.runs.listing import resolve_run
    from engine.runs.listing import history

    return history(resolve_run(run), limit)


def delete_run_job(ctx, run: str) -> str:
    """Delete a run folder (not while it trains); unloads its model if loaded."""
    from engine.runs.listing import resolve_run
    from engine.runs.listing import delete_run, read_card

    path = resolve_run(run)
    model_id = (read_card(path).get("catalogue") or {}).get("id")
    if model_id is not None and ctx is not None and getattr(ctx, "models", None) is not None:
        for key, _ in ctx.models.loaded():
            if key.startswith(model_id + "@"):
                ctx.models.unload(key)
    delete_run(path)
    return path.name


__all__ = ["recipes_job", "backbones_job", "runs_job", "run_history_job", "delete_run_job", "TrainingError"]
