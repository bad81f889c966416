"""Search models' image towers in ONNX Runtime: fp32, or int8 where it keeps the same vectors.

Indexing a folder is one image tower run over every photo. Eager PyTorch on a CPU spends a
good part of that in per-op overhead that ONNX Runtime's fused graph does not have, and int8
matrix products (VNNI) are about 2-3x faster again. So the tower is exported once per weights
file (cached by its hash, engine/runtime/onnx_cache.py) and embedding runs in ONNX Runtime;
PyTorch stays the path for attention maps, training and any device other than the CPU.

int8 (ONNX Runtime's dynamic quantisation of the MatMul/Gemm weights) is used only where it
keeps the model's vectors: on export, fp32 and int8 embed the same sample photos, and int8 is
kept only if every photo's two vectors have cosine >= INT8_MIN_COSINE. The verdict is cached
next to the export. benchmarks/search_vs_rclip.py reports recall@10 of int8 against fp32.

Set PATCHWORK_IMAGE_RUNTIME to "fp32" (no int8) or "torch" (no ONNX) to compare.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from collections.abc import Callable

import numpy as np

from engine.runtime import onnx_cache

log = logging.getLogger(__name__)

RUNTIME_ENV = "PATCHWORK_IMAGE_RUNTIME"
INT8_MIN_COSINE = 0.995
#: MatMul/Gemm only: the transformer's bulk. Dynamic ConvInteger is slower than fp32 convs in ONNX Runtime.
INT8_OPS = ("MatMul", "Gemm")


def runtime_choice() -> str:
    """"int8" (default: int8 where it passes the check, else fp32), "fp32" or "torch"."""
    value = os.environ.get(RUNTIME_ENV, "int8").strip().lower()
    return value if value in ("int8", "fp32", "torch") else "int8"


class ImageTower:
    """batch (N x 3 x S x S float32) -> the tower's raw outputs (N x D float32) in ONNX Runtime."""

    def __init__(self, path: Path, int8: bool, threads: int | None = None):
        self.path, self.int8 = path, int8
        self.session = onnx_cache.session(path, threads)
        self._input = self.session.get_inputs()[0].name
        dim = self.session.get_outputs()[0].shape[-1]
        self.dim = dim if isinstance(dim, int) else None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        (out,) = self.session.run(None, {self._input: np.ascontiguousarray(batch, dtype=np.float32)})
        return out.astype(np.float32, copy=False)


def export_path(name: str, weights: Path) -> Path:
    return onnx_cache.folder() / f"{name}-image-{onnx_cache.weights_key(weights)}.onnx"


def export_tower(module, size: int, dest: Path) -> Path:
    """The tower (eval mode; images -> raw outputs) exported once with a dynamic batch axis."""
    import torch

    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused MHA kernel has no ONNX export
    try:
        return onnx_cache.export_module(module, (torch.zeros(2, 3, size, size),), dest, ["images"], ["features"],
                                        {"images": {0: "batch"}, "features": {0: "batch"}})
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def quantised(fp32: Path, check: Callable[[ImageTower, ImageTower], float]) -> Path | None:
    """The int8 export of `fp32` if check(fp32 tower, int8 tower) (the worst cosine between their
    vectors on sample photos) clears INT8_MIN_COSINE, else None. Both verdicts are cached."""
    dest = fp32.with_name(fp32.stem + "-int8.onnx")
    verdict = fp32.with_name(fp32.stem + "-int8.json")
    if verdict.is_file():
        try:
            ok = bool(json.loads(verdict.read_text())["ok"])
            if not ok or dest.is_file():
                return dest if ok else None
        except (ValueError, KeyError):
            pass
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def write(tmp: Path) -> None:
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # onnxruntime.quantization warns "consider pre-processing" on the root logger
        try:
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=list(INT8_OPS))
        finally:
            root.setLevel(level)

    onnx_cache.write_once(dest, write)
    worst = float(check(ImageTower(fp32, False), ImageTower(dest, True)))
    ok = worst >= INT8_MIN_COSINE
    onnx_cache.write_once(verdict, lambda tmp: tmp.write_text(json.dumps({"ok": ok, "min_cosine": worst})))
    if not ok:
        log.info("int8 image tower %s kept fp32: worst cosine %.4f < %.3f", fp32.name, worst, INT8_MIN_COSINE)
        dest.unlink(missing_ok=True)
        return None
    return dest


def sample_batch(to_input: Callable, count: int = 12) -> np.ndarray:
    """Real photos for the int8 check: scikit-image's bundled samples and crops of them."""
    from PIL import Image
    from skimage import data

    photos = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "horse", "camera", "coins", "moon"):
        try:
            arr = np.asarray(getattr(data, name)())
        except Exception:  # noqa: BLE001 - a sample that needs a download is skipped
            continue
        if arr.dtype != np.uint8:
            arr = (255 * (arr > 0)).astype(np.uint8) if arr.dtype == bool else arr.astype(np.uint8)
        img = Image.fromarray(arr if arr.ndim == 3 else np.stack([arr] * 3, -1)).convert("RGB")
        w, h = img.size
        photos += [img, img.crop((w // 4, h // 4, w, h)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return np.stack([to_input(p) for p in photos[:count]])


def worst_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float((a * b).sum(1).min())
