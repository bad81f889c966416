"""Search models' image towers in ONNX Runtime give PyTorch's vectors (cosine >= 0.9999 in fp32),
int8 is kept only when it passes its check on sample photos, the export is cached by the weights'
hash, and a failed export leaves indexing on PyTorch with a one-line reason."""
from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="pip install onnxruntime (a dependency of Patchwork)")

import torch  # noqa: E402

from engine.context import EngineContext  # noqa: E402
from engine.preprocess import to_input  # noqa: E402
from engine.runtime import image_onnx, onnx_cache  # noqa: E402
from engine.search.embedders import Embedder, _ImageOnly  # noqa: E402


@pytest.fixture
def runtime(monkeypatch):
    def choose(value: str) -> None:
        monkeypatch.setenv(image_onnx.RUNTIME_ENV, value)

    return choose


def tiny_clip():
    import open_clip

    torch.manual_seed(0)
    return open_clip.model.CLIP(embed_dim=16, vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2,
                                                              head_width=32),
                                text_cfg=dict(context_length=8, vocab_size=100, width=32, heads=2, layers=1)).eval()


def test_clip_image_tower_matches_pytorch_and_is_cached(tmp_path):
    model = tiny_clip()
    weights = tmp_path / "w.bin"
    weights.write_bytes(os.urandom(64))
    dest = image_onnx.export_path("tiny-clip", weights)
    assert onnx_cache.weights_key(weights) in dest.name
    path = image_onnx.export_tower(_ImageOnly(model), 32, dest)
    mtime = path.stat().st_mtime_ns
    assert image_onnx.export_tower(_ImageOnly(model), 32, dest) == path and path.stat().st_mtime_ns == mtime

    x = np.random.default_rng(0).standard_normal((5, 3, 32, 32)).astype(np.float32)  # batch != the traced 2
    with torch.no_grad():
        want = model.encode_image(torch.from_numpy(x)).numpy()
    tower = image_onnx.ImageTower(path, int8=False)
    got = tower(x)
    assert got.shape == want.shape and tower.dim == 16
    assert image_onnx.worst_cosine(want, got) >= 0.9999


def test_int8_is_kept_only_when_its_vectors_agree(tmp_path):
    model = tiny_clip()
    weights = tmp_path / "w.bin"
    weights.write_bytes(os.urandom(64))
    fp32 = image_onnx.export_tower(_ImageOnly(model), 32, image_onnx.export_path("tiny-clip-q", weights))
    x = np.random.default_rng(1).standard_normal((8, 3, 32, 32)).astype(np.float32)

    def check(a, b):
        return image_onnx.worst_cosine(a(x), b(x))

    int8 = image_onnx.quantised(fp32, check)
    assert int8 is not None and int8.is_file(), "int8 of a 2-layer ViT stays within cosine 0.995"
    assert image_onnx.worst_cosine(image_onnx.ImageTower(fp32, False)(x), image_onnx.ImageTower(int8, True)(x)) \
        >= image_onnx.INT8_MIN_COSINE
    # the verdict is cached: a failing check is not even asked again
    assert image_onnx.quantised(fp32, lambda a, b: 0.0) == int8

    refused = image_onnx.export_tower(_ImageOnly(model), 32, image_onnx.export_path("tiny-clip-r", weights))
    assert image_onnx.quantised(refused, lambda a, b: 0.5) is None
    assert not refused.with_name(refused.stem + "-int8.onnx").exists()
    assert image_onnx.quantised(refused, lambda a, b: 1.0) is None  # cached refusal


def test_label_space_photos_embed_the_same_through_onnx(runtime):
    """EfficientNet-Lite0's real weights: the label-space vectors of real photos, PyTorch vs ONNX."""
    runtime("fp32")
    ctx = EngineContext("cpu", 4000)
    emb = Embedder(ctx, "labelspace-lite0")
    x = image_onnx.sample_batch(lambda img: to_input(img, emb.preprocess), 6)
    want = emb.encode_images(x)
    assert emb.use_onnx_images(ctx) is None and emb.tower is not None and not emb.tower.int8
    got = emb.encode_images(x)
    assert got.shape == want.shape == (6, 1000)
    assert image_onnx.worst_cosine(want, got) >= 0.9999
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-4)  # still class probabilities

    runtime("int8")
    emb8 = Embedder(ctx, "labelspace-lite0")
    assert emb8.use_onnx_images(ctx) is None
    verdict = emb8.tower.path.name if emb8.tower.int8 else "fp32"
    assert image_onnx.worst_cosine(want, emb8.encode_images(x)) >= image_onnx.INT8_MIN_COSINE, verdict


def test_a_failed_export_leaves_pytorch_with_a_one_line_reason(runtime, tmp_path, monkeypatch):
    runtime("fp32")
    home = tmp_path / "home"
    monkeypatch.setenv("PATCHWORK_HOME", str(home))
    (home / "cache").mkdir(parents=True)
    (home / "cache" / "onnx").write_text("a file where the export folder should be")
    ctx = EngineContext("cpu", 4000)
    emb = Embedder(ctx, "labelspace-lite0")
    x = image_onnx.sample_batch(lambda img: to_input(img, emb.preprocess), 2)
    reason = emb.use_onnx_images(ctx)
    assert reason and "\n" not in reason and "PyTorch" in reason and emb.tower is None
    assert emb.encode_images(x).shape == (2, 1000)


def test_small_folders_do_not_pay_for_an_export(runtime, tmp_path, monkeypatch):
    runtime("fp32")
    monkeypatch.setenv("PATCHWORK_HOME", str(tmp_path / "fresh"))
    ctx = EngineContext("cpu", 4000)
    emb = Embedder(ctx, "labelspace-lite0")
    assert emb.use_onnx_images(ctx, export=False) is None and emb.tower is None
    assert not (tmp_path / "fresh" / "cache" / "onnx").exists() or not any(
        (tmp_path / "fresh" / "cache" / "onnx").glob("*.onnx"))
