"""Config dataclasses written into cards and read back: reading one names any key it does not know."""
from __future__ import annotations

from dataclasses import fields

from engine.errors import ModelError


def reject_unknown_keys(cls, d: dict, what: str) -> None:
    """A ModelError naming the keys of `d` that are not fields of the dataclass `cls`."""
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ModelError(f"unknown {what} config keys: {', '.join(sorted(unknown))}")
