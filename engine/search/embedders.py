"""One interface over the models that can embed photos and text into one space."""
from __future__ import annotations

import numpy as np

from engine import catalogue
from engine.catalogue.load import load_model
from engine.errors import ModelError

DEFAULT_SEARCH_MODEL = "labelspace-lite0"


class Embedder:
    """encode_images(N x 3 x S x S float32) and encode_texts(list[str]) -> float32 rows, L2-normalised
    except for label-space models, whose rows are class probabilities and memberships (their dot
    product is a probability; see engine/search/labelspace.py)."""

    def __init__(self, ctx, model_id: str):
        self.entry = catalogue.get(model_id)
        if "search" not in self.entry.panels:
            raise ModelError(f"{self.entry.name} cannot embed photos for search")
        self.model_id = model_id
        self.model = load_model(ctx, model_id)
        self.device = ctx.device
        self._tokenizer = None
        self.unit_vectors = self.entry.builder != "labelspace"
        if self.entry.builder == "open_clip":
            import open_clip

            self._tokenizer = open_clip.get_tokenizer(self.entry.arch)

    @property
    def preprocess(self):
        return self.entry.preprocess

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(batch).to(self.device)
        with torch.inference_mode():
            out = self.model.encode_image(x).float()
            if self.unit_vectors:
                out = torch.nn.functional.normalize(out, dim=-1)
        return out.cpu().numpy()

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            if self._tokenizer is not None:
                out = self.model.encode_text(self._tokenizer(list(texts)).to(self.device)).float()
            else:
                out = torch.as_tensor(self.model.encode_text(list(texts))).float()
            if self.unit_vectors:
                out = torch.nn.functional.normalize(out, dim=-1)
        return out.cpu().numpy()

    def normalise(self, vec: np.ndarray) -> np.ndarray:
        """A query's weighted sum of term vectors, scaled like one term's vector."""
        if not self.unit_vectors:
            from engine.search.labelspace import normalise

            return normalise(vec).astype(np.float32)
        return (vec / np.linalg.norm(vec)).astype(np.float32)
