"""Classification with the real packaged EfficientNet-Lite0 weights, through the engine."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from engine import catalogue
from engine.classify import BatchResult, ClassifyResult
from engine.core import Engine
from engine.errors import JobFailed, ModelError
from engine.jobs import JobEvent, Priority

WAIT = 120.0  # the first job loads the model (a couple of seconds)


def skimage_photo(name: str) -> str:
    import skimage

    path = os.path.join(os.path.dirname(skimage.__file__), "data", name)
    assert os.path.isfile(path), path
    return path


@pytest.fixture(scope="module")
def engine():
    eng = Engine(device="cpu").start()
    assert eng.wait_ready(60)
    yield eng
    eng.shutdown()


def test_weights_key_mapping_covers_every_key():
    import timm
    import torch

    from engine.models.efficientnet_lite import map_key, weights_path

    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    assert len(state) == 296
    mapped = [map_key(k) for k in state]
    assert len(set(mapped)) == len(mapped), "two packaged keys map to the same timm key"
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    assert set(mapped) == set(model.state_dict())
    assert map_key("_blocks.3._bn1.weight") == "blocks.2.0.bn2.weight"
    with pytest.raises(KeyError):
        map_key("_nonsense.weight")


def test_model_loads_strictly_from_packaged_weights(engine):
    import torch

    from engine.models.efficientnet_lite import build, weights_path

    entry = catalogue.get("efficientnet-lite0")
    model = build(entry)
    assert not model.training
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    assert torch.equal(model.conv_stem.weight, state["_conv_stem.weight"])
    assert torch.equal(model.classifier.bias, state["_fc.bias"])
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(4.65e6, rel=0.02)


def classify(engine, path, **params) -> ClassifyResult:
    res = engine.submit("classify", {"path": path, **params}).result(timeout=WAIT)
    assert isinstance(res, ClassifyResult)
    return res


def test_coffee_is_espresso(engine):
    res = classify(engine, skimage_photo("coffee.png"))
    assert res.top[0].label == "espresso", res.top
    assert res.top[0].prob > 0.8, res.top  # confident: preprocessing matches the weights
    assert res.model_id == catalogue.DEFAULT_CLASSIFIER
    assert res.image_size == (600, 400)
    sizes = dict(engine.context.models.loaded())
    assert sizes["efficientnet-lite0@cpu"] == pytest.approx(18, abs=3)  # MB, cached for the next job


def test_preprocess_uses_tflite_normalisation():
    from PIL import Image

    from engine.classify import preprocess

    pp = catalogue.get("efficientnet-lite0").preprocess
    grey = preprocess(Image.new("RGB", (300, 200), (127, 127, 127)), pp)
    assert tuple(grey.shape) == (1, 3, 224, 224)
    assert float(grey.abs().max()) < 1e-5  # (127 - 127) / 128
    white = preprocess(Image.new("RGB", (200, 300), (255, 255, 255)), pp)
    assert float(white.min()) == pytest.approx(1.0, abs=1e-5)  # (255 - 127) / 128


def test_chelsea_is_a_cat(engine):
    res = classify(engine, skimage_photo("chelsea.png"))
    labels = [p.label for p in res.top[:2]]
    assert {"tabby", "tiger cat", "Egyptian cat"} & set(labels), res.top


def test_probabilities_top_k_and_preview(engine):
    res = classify(engine, skimage_photo("coffee.png"), top_k=7)
    assert len(res.top) == 7
    probs = [p.prob for p in res.top]
    assert probs == sorted(probs, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probs) and sum(probs) <= 1.0 + 1e-5
    assert len({p.index for p in res.top}) == 7
    assert res.top[0].description.startswith("espresso")

    prev = res.preview
    assert isinstance(prev, np.ndarray) and prev.dtype == np.uint8
    assert prev.ndim == 3 and prev.shape[2] == 3 and max(prev.shape[:2]) <= 1024
    assert prev.shape[:2] == (400, 600)  # coffee.png is 600x400: not enlarged

    res1 = classify(engine, skimage_photo("coffee.png"), top_k=1, preview=False)
    assert len(res1.top) == 1 and res1.preview is None
    assert res1.top[0].prob == pytest.approx(res.top[0].prob, abs=1e-5)


def test_large_photo_preview_is_capped(engine, tmp_path):
    from PIL import Image

    src = Image.open(skimage_photo("chelsea.png")).convert("RGB").resize((2100, 1500))
    path = tmp_path / "big.jpg"
    src.save(path, quality=90)
    res = classify(engine, str(path), top_k=3)
    assert max(res.preview.shape[:2]) <= 1024 and res.preview.dtype == np.uint8


def test_bad_image_fails_the_job_as_expected_error(engine, tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(JobFailed) as exc_info:
        engine.submit("classify", {"path": str(path)}).result(timeout=WAIT)
    assert exc_info.value.info.expected and exc_info.value.info.type == "BadImageError"
    assert str(path) in exc_info.value.info.message


def test_unknown_model_is_a_model_error(engine):
    with pytest.raises(JobFailed) as exc_info:
        engine.submit("classify", {"path": skimage_photo("coffee.png"), "model_id": "nope"}).result(timeout=WAIT)
    assert exc_info.value.info.type == "ModelError" and "nope" in exc_info.value.info.message


def test_classify_batch_lists_failures_and_finishes(engine, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    missing = tmp_path / "missing.jpg"
    good = skimage_photo("coffee.png")

    events: list[JobEvent] = []
    lock = threading.Lock()

    def listener(ev):
        if isinstance(ev, JobEvent):
            with lock:
                events.append(ev)

    engine.add_listener(listener)
    try:
        handle = engine.submit("classify_batch", {"paths": [good, str(corrupt), str(missing)], "top_k": 3},
                               priority=Priority.BACKGROUND)
        res = handle.result(timeout=WAIT)
    finally:
        engine.remove_listener(listener)

    assert isinstance(res, BatchResult)
    assert [r.path for r in res.results] == [good]
    assert res.results[0].top[0].label == "espresso" and len(res.results[0].top) == 3
    assert res.results[0].preview is None
    failed = dict(res.failures)
    assert set(failed) == {str(corrupt), str(missing)}
    assert "not found" in failed[str(missing)]
    assert failed[str(corrupt)]  # a reason, whatever Pillow called it

    mine = [e for e in events if e.job_id == handle.id]
    progress = [e.payload for e in mine if e.kind == "progress"]
    assert progress and progress[-1].fraction == 1.0 and progress[-1].done == 3
    assert handle.info.progress.fraction == 1.0
    partials = [e.payload for e in mine if e.kind == "partial"]
    assert [p.path for p in partials] == [good]


def test_checksum_mismatch_is_reported(tmp_path):
    from engine.integrity import sha256_file, verify_sha256

    path = tmp_path / "weights.pt"
    path.write_bytes(b"not really weights")
    verify_sha256(str(path), sha256_file(str(path)).upper())  # right hash, any case: fine
    with pytest.raises(ModelError, match="checksum mismatch"):
        verify_sha256(str(path), "0" * 64)
    with pytest.raises(ModelError, match="cannot read"):
        verify_sha256(str(tmp_path / "absent.pt"), "0" * 64)


def test_catalogue_checksum_matches_packaged_weights():
    from engine.integrity import sha256_file
    from engine.models.efficientnet_lite import weights_path

    assert sha256_file(weights_path()) == catalogue.get("efficientnet-lite0").sha256
    with pytest.raises(ModelError, match="unknown model"):
        catalogue.get("nope")
