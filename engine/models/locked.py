"""Pretrained parts a model uses but neither trains nor saves (MiniLM in LiT and ALBEF)."""
from __future__ import annotations

from torch import nn


class HoldsLocked(nn.Module):
    """A model holding a locked module outside its module tree: it is not trained and not in
    the state dict (its weights come from its package), yet .to(device) and casts reach it."""

    _locked: tuple[nn.Module, ...] = ()

    def lock(self, module: nn.Module) -> None:
        module.requires_grad_(False).eval()
        self._locked = (module,)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        for m in self._locked:
            m._apply(fn, recurse)
        return self
