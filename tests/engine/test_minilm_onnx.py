"""MiniLM through ONNX Runtime matches the PyTorch sentence encoder (cosine >= 0.9999), and the
query side runs in a process that never imports torch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime", reason="pip install onnxruntime (a dependency of Patchwork)")

from engine.runtime import minilm_onnx  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["a photo of a cat", "一杯咖啡", "espresso", "a red sports car on a beach at sunset", "x" * 3000, ""]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    home = tmp_path_factory.mktemp("onnx-home")
    old = os.environ.get("PATCHWORK_HOME")
    os.environ["PATCHWORK_HOME"] = str(home)
    try:
        yield minilm_onnx.export(), home
    finally:
        if old is None:
            os.environ.pop("PATCHWORK_HOME", None)
        else:
            os.environ["PATCHWORK_HOME"] = old


def test_onnx_matches_the_pytorch_sentence_encoder(exported):
    from sentence_transformers import SentenceTransformer

    path, _ = exported
    reference = SentenceTransformer(str(minilm_onnx.model_folder()), device="cpu")
    want = reference.encode(TEXTS, normalize_embeddings=True)
    got = minilm_onnx.MiniLMOnnx(path=path).encode(TEXTS)
    cos = (want * got).sum(1)
    assert got.shape == (len(TEXTS), 384)
    assert cos.min() >= 0.9999, cos


def test_export_is_cached_by_weights(exported):
    path, _ = exported
    mtime = path.stat().st_mtime_ns
    assert minilm_onnx.export() == path and path.stat().st_mtime_ns == mtime
    assert minilm_onnx.weights_key(minilm_onnx.model_folder()) in path.name


def test_query_side_never_imports_torch(exported):
    _, home = exported
    code = ("import sys; from engine.runtime.minilm_onnx import MiniLMOnnx; "
            "v = MiniLMOnnx().encode(['a cat']); assert v.shape == (1, 384); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PATCHWORK_HOME=str(home)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"

