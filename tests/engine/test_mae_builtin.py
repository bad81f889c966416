"""The built-in tiny MAE (resources/checkpoints/fmnist-mae-tiny): quality against the
mean-of-visible-patches baseline, its card, the "mae" engine job and `python main.py mae`."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from engine import catalogue
from engine.catalogue.load import build_model
from engine.data import fashion_mnist
from engine.mae import quality
from engine.resources import RESOURCES

needs_fmnist = pytest.mark.skipif(not fashion_mnist.is_available(), reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")
CARD = RESOURCES / "checkpoints" / "fmnist-mae-tiny" / "card.json"


@pytest.fixture(scope="module")
def tiny():
    return build_model(catalogue.get("fmnist-mae-tiny"))


@pytest.fixture(scope="module")
def test_images():
    return fashion_mnist.load_fashion_mnist("test").images


@needs_fmnist
def test_tiny_mae_beats_the_mean_of_visible_patches_at_75_percent(tiny, test_images):
    pp = catalogue.get("fmnist-mae-tiny").preprocess
    images = np.ascontiguousarray(test_images[:300, None])  # (300, 1, 28, 28)
    m = quality.run(quality.evaluate(tiny, images, pp.mean, pp.std, mask_ratio=0.75, seed=0))
    print(f"\nhidden-patch MSE on 300 test images at 75%: MAE {m['masked_mse']:.4f}, mean of visible patches "
          f"{m['baseline_mean_visible_mse']:.4f}, nearby visible patches {m['baseline_nearby_visible_mse']:.4f}")
    assert m["images"] == 300
    assert m["masked_mse"] < 0.5 * m["baseline_mean_visible_mse"]
    assert m["masked_mse"] < m["baseline_nearby_visible_mse"]  # it does better than local interpolation too
    # an untrained model of the same shape does not: the margin comes from pretraining
    import torch

    from engine.models.mae import MaskedAutoencoderViT

    torch.manual_seed(0)
    untrained = MaskedAutoencoderViT(tiny.config).eval()
    u = quality.run(quality.evaluate(untrained, images[:100], pp.mean, pp.std, mask_ratio=0.75, seed=0))
    assert u["masked_mse"] > m["masked_mse"] * 2


def test_card_and_catalogue_entry():
    card = json.loads(CARD.read_text())
    entry = catalogue.get("fmnist-mae-tiny")
    weights = CARD.with_name("model.safetensors")
    assert entry.family == "mae" and "mae" in entry.panels and entry.source.kind == "resources"
    assert weights.stat().st_size <= 4.2 * 2**20
    assert entry.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest() == card["sha256"]
    assert card["recipe"] == "mae" and card["status"] == "finished"
    assert card["command"] == "python main.py train mae --dataset fashion-mnist"
    q = card["quality"]
    assert q["command"].startswith("python -m engine.mae.quality")
    assert q["masked_mse"] < q["baseline_mean_visible_mse"] and q["images"] == 10_000
    assert card["metrics"]["masked_mse"] < card["metrics"]["baseline_mean_visible_mse"]


@pytest.fixture(scope="module")
def shirt(tmp_path_factory, test_images) -> str:
    path = tmp_path_factory.mktemp("fm") / "test-00004.png"
    Image.fromarray(test_images[4]).save(path)
    return str(path)


@needs_fmnist
def test_mae_job_on_the_engine_thread(shirt):
    from engine.core import Engine

    engine = Engine(device="cpu").start()
    try:
        engine.wait_ready()
        a = engine.submit("mae", {"path": shirt, "mode": "block", "mask_ratio": 0.75, "seed": 2}).result()
        b = engine.submit("mae", {"path": shirt, "mode": "block", "mask_ratio": 0.75, "seed": 2}).result()
        c = engine.submit("mae", {"path": shirt, "mask_ratio": 0.0}).result()
    finally:
        engine.shutdown()
    v = a.views
    assert a.model_id == "fmnist-mae-tiny" and v.grid == (7, 7) and v.len_keep == 12
    assert np.array_equal(v.original[..., 0], np.asarray(Image.open(shirt)))  # exactly the test image
    assert np.array_equal(v.reconstruction, b.views.reconstruction) and np.array_equal(v.ids_shuffle, b.views.ids_shuffle)
    assert np.array_equal(v.ids_shuffle[v.ids_restore], np.arange(49))
    assert v.masked_mse < v.baseline_mse
    assert c.views.len_keep == 49 and c.views.masked_mse is None and not c.views.hidden.any()


@needs_fmnist
def test_headless_command_writes_the_five_views(shirt, tmp_path, capsys):
    from main import main

    out = tmp_path / "views.png"
    assert main(["mae", shirt, "--model", "fmnist-mae-tiny", "--mask-ratio", "0.75", "--seed", "0", "--mode", "grid",
                 "--out", str(out), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "the encoder saw 12" in text and "baseline" in text
    img = Image.open(out)
    assert img.width > 5 * 224 and img.height > 224  # five 28-px views enlarged side by side
    assert main(["mae", str(tmp_path / "missing.png"), "--device", "cpu"]) == 1
    assert main(["mae", shirt, "--keep", "0,8,16", "--json", "--device", "cpu"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["len_keep"] == 3 and sorted(record["ids_shuffle"][:3]) == [0, 8, 16]
