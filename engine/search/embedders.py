"""One interface over the models that can embed photos and text into one space."""
from __future__ import annotations

import logging
import re

import numpy as np

from engine import catalogue
from engine.catalogue.load import load_model
from engine.errors import ModelError

DEFAULT_SEARCH_MODEL = "labelspace-lite0"
#: Builders whose image tower runs in ONNX Runtime for indexing (engine/runtime/image_onnx.py).
CLASSIFIER_BUILDERS = ("labelspace", "conse")

log = logging.getLogger(__name__)


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
        self.tower = None  # the ONNX image tower, once use_onnx_images() found or made it
        self._post = None
        self.unit_vectors = self.entry.builder != "labelspace"
        if self.entry.builder == "open_clip":
            import open_clip

            self._tokenizer = open_clip.get_tokenizer(self.entry.arch)

    @property
    def preprocess(self):
        return self.entry.preprocess

    def use_onnx_images(self, ctx, export: bool = True) -> str | None:
        """Embed photos with the image tower in ONNX Runtime from now on, exported and checked on
        first use (only if `export`) and cached; a one-line reason, logged, where it stays PyTorch."""
        from engine.runtime import image_onnx

        if image_onnx.runtime_choice() == "torch" or str(self.device) != "cpu":
            return None
        try:
            spec = self._tower_spec()
            if spec is None or spec[1] is None or not (export or image_onnx.export_path(*spec[:2]).is_file()):
                return None
            self.tower = ctx.models.get(f"{spec[0]}:{spec[1]}@onnx-image-{image_onnx.runtime_choice()}",
                                        lambda: self._build_tower(*spec))
            self._post = spec[4]
            return None
        except Exception as exc:  # noqa: BLE001 - any export/runtime failure: PyTorch still works
            reason = f"{self.entry.name}: ONNX Runtime image tower unavailable ({type(exc).__name__}: " \
                     f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); embedding with PyTorch"
            log.warning(reason)
            self.tower = self._post = None
            return reason

    def export_onnx_text(self) -> None:
        """An open_clip model's text tower exported once for torch-free queries (quick.py); a
        failure is logged in one line and queries keep the engine's PyTorch path."""
        from engine.runtime import clip_text_onnx

        weights = clip_text_weights(self.entry)
        if weights is None or self._tokenizer is None:
            return
        try:
            clip_text_onnx.export_text(self.model, self._tokenizer, clip_text_onnx.export_path(_slug(self.entry.id),
                                                                                            weights))
        except Exception as exc:  # noqa: BLE001 - optional: the engine answers text queries anyway
            log.warning("%s: text tower not exported to ONNX (%s: %s); queries use PyTorch", self.entry.name,
                        type(exc).__name__, (str(exc).splitlines() or [""])[0][:200])

    def _tower_spec(self):
        """(cache name, weights file, torch module images -> raw outputs, input size, numpy post-step)."""
        from engine.catalogue.locate import local_path

        if self.entry.builder in CLASSIFIER_BUILDERS and hasattr(self.model, "from_logits"):
            from engine import catalogue

            classifier = catalogue.get(self.entry.option("classifier", "efficientnet-lite0"))
            return (classifier.id, local_path(classifier), self.model.classifier, self.preprocess.input_size,
                    self.model.from_logits)
        if self.entry.builder == "open_clip":
            weights = local_path(self.entry)
            if weights is None or not weights.is_file():
                return None
            return (_slug(self.entry.id), weights, _ImageOnly(self.model),
                    self.preprocess.input_size, None)
        return None

    def _build_tower(self, name: str, weights, module, size: int, post):
        from engine.preprocess import to_input
        from engine.runtime import image_onnx

        fp32 = image_onnx.export_tower(module, size, image_onnx.export_path(name, weights))
        path = None
        if image_onnx.runtime_choice() == "int8":
            post = post or (lambda out: out)

            def check(a, b):
                x = image_onnx.sample_batch(lambda img: to_input(img, self.preprocess))
                return image_onnx.worst_cosine(post(a(x)), post(b(x)))

            path = image_onnx.quantised(fp32, check)
        return image_onnx.ImageTower(path or fp32, int8=path is not None)

    def image_dim(self) -> int:
        """The length of a photo's vector, without a text pass where the ONNX tower knows it."""
        if self.tower is not None and self.tower.dim:
            return self.tower.dim if self._post is None else self._post(np.ones((1, self.tower.dim), np.float32)).shape[1]
        return self.encode_texts(["photo"]).shape[1]

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        if self.tower is not None:
            out = self.tower(batch if isinstance(batch, np.ndarray) else batch.float().cpu().numpy())
            out = self._post(out) if self._post is not None else out
            if self.unit_vectors:
                out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
            return out.astype(np.float32, copy=False)
        import torch

        x = torch.as_tensor(batch).to(self.device)
        with torch.inference_mode(), torch.autocast(self.device_type, dtype=torch.bfloat16,
                                                    enabled=self.device_type == "cuda"):
            out = self.model.encode_image(x).float()
            if self.unit_vectors:
                out = torch.nn.functional.normalize(out, dim=-1)
        return out.cpu().numpy()

    @property
    def device_type(self) -> str:
        return str(self.device).split(":")[0]

    def input_dtype(self):
        """bf16 inputs on CUDA (the model runs under bf16 autocast there), else float32."""
        import torch

        return torch.bfloat16 if self.device_type == "cuda" else torch.float32

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



def _slug(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model_id)


def clip_text_weights(entry):
    """The weights file an open_clip entry's text export is keyed by, or None."""
    if entry.builder != "open_clip":
        return None
    from engine.catalogue.locate import local_path

    weights = local_path(entry)
    return weights if weights is not None and weights.is_file() else None


def clip_text_export(entry):
    """The cached ONNX text tower of an open_clip entry, or None (not exported, or not CLIP)."""
    from engine.runtime import clip_text_onnx

    weights = clip_text_weights(entry)
    if weights is None:
        return None
    path = clip_text_onnx.export_path(_slug(entry.id), weights)
    return path if clip_text_onnx.ready(path) else None


def _ImageOnly(model):  # noqa: N802 - a torch.nn.Module made lazily: engine/search imports torch only when used
    import torch

    class ImageOnly(torch.nn.Module):
        """model.encode_image as a module's forward, for the ONNX export."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, images):
            return self.model.encode_image(images)

    return ImageOnly()
