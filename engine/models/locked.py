"""Pretrained parts a model uses but neither trains nor saves (MiniLM in LiT, ALBEF and ViLT)."""
from __future__ import annotations

import torch
from torch import nn

from engine.errors import ModelError


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


class LockedMiniLM(HoldsLocked):
    """A model whose text side reads the locked MiniLM's token states (ALBEF, ViLT)."""

    def minilm_tokens(self, texts: list[str]):
        """MiniLM's token states (N, T, 384) float, mask (N, T) bool, and the tokenizer's
        encoding (word ids for per-word maps)."""
        if not self._locked:
            raise ModelError(f"this {type(self).__name__} model was loaded without its MiniLM text encoder")
        enc = self._locked[0]
        batch = enc.tokenize(list(texts))
        device = next(enc.parameters()).device
        with torch.no_grad():
            out = enc.model(**{k: v.to(device) for k, v in batch.items()})[0].float()
        return out, batch["attention_mask"].to(device).bool(), batch


def build_minilm() -> nn.Module:
    """MiniLM from its package, to be locked: what the catalogue's minilm-l6-v2 builds, loaded
    here without the catalogue (which sits above the models)."""
    from engine.models.builders import sentence_encoder
    from engine.models.text import minilm_path

    return sentence_encoder(minilm_path(), "all-MiniLM-L6-v2 (sentence encoder)")
