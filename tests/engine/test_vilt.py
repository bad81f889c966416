"""ViLT: the single-stream model's shapes and padding, the recipe in the shared loop (steps,
exact resume), and the "match" request and `main.py match` on a tiny ViLT run (ITM only)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.data import fashion_mnist
from engine.models.vilt import ViLT, ViLTConfig
from engine.paths import runs_dir
from engine.runs.checkpoint import RunFolder
from engine.train.loop import train
from engine.train.recipes import recipe_class
from tests.engine.training import drive, one_thread  # noqa: F401  (one intra-op thread here too)

needs_fmnist = pytest.mark.skipif(not fashion_mnist.is_available(), reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")
SMALL = {"train_limit": 64, "test_limit": 20, "batch_size": 16, "max_steps": 4, "depth": 2, "width": 64,
         "log_every": 1, "checkpoint_every": 2, "caption_noise": 0.25}
RUN = "vilt-tiny-test"


def recipe(**config):
    rec = recipe_class("vilt")({**SMALL, **config}, "fashion-mnist")
    for _ in rec.prepare():
        pass
    return rec


def test_shapes_padding_and_gradcam_block():
    from engine.match.jobs import vilt_gradcam

    torch.manual_seed(0)
    model = ViLT(ViLTConfig(width=32, depth=2, heads=2), None).eval()
    assert model.grid == (4, 4)
    x, tokens = torch.randn(3, 1, 28, 28), torch.randn(3, 9, 384)
    mask = torch.ones(3, 9, dtype=torch.bool)
    mask[1, 6:] = False  # a shorter caption, padded
    logits = model(x, tokens, mask)
    assert logits.shape == (3, 2)
    # Padding is masked out of every key: more of it changes nothing.
    padded = model(x, torch.cat([tokens, torch.randn(3, 4, 384)], 1), torch.cat([mask, torch.zeros(3, 4, dtype=bool)], 1))
    assert torch.allclose(logits, padded, atol=1e-5)
    probs, cam = vilt_gradcam(model, model.embed_image(x), model.embed_text(tokens), mask, layer=0)
    assert probs.shape == (3,) and cam.shape == (3, 9, 16)  # text rows x patch columns
    assert (cam >= 0).all() and cam[:, 1:].sum() > 0  # the words' rows reach the [CLS] output through layer 2


@needs_fmnist
def test_recipe_trains_evaluates_and_resumes_exactly(tmp_path):
    from safetensors.torch import load_file

    result, partials = drive(train(recipe(), RunFolder(tmp_path / "straight"), "cpu"))
    steps = [p for p in partials if p.get("kind") == "train"]
    assert len(steps) == 4 and all(np.isfinite(p["loss"]) for p in steps)
    assert all(p["negative_pairs"] > 0 for p in steps)
    m = result["metrics"]
    for key in ("zero_shot_accuracy", "itm_accuracy", "itm_matched_accuracy", "itm_mismatched_accuracy"):
        assert 0.0 <= m[key] <= 1.0
    assert m["itm_accuracy"] == pytest.approx((m["itm_matched_accuracy"] + m["itm_mismatched_accuracy"]) / 2)
    drive(train(recipe(), RunFolder(tmp_path / "stopped"), "cpu"), stop_after_step=2)
    stopped = RunFolder(tmp_path / "stopped")
    assert stopped.read_card()["status"] == "stopped"
    result, _ = drive(train(recipe(), stopped, "cpu", resume=True))
    assert result["step"] == 4
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "stopped" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    card = stopped.read_card()
    assert card["catalogue"]["family"] == "vilt" and card["catalogue"]["panels"] == ["match"]


@needs_fmnist
def test_random_negatives_are_another_class():
    rec = recipe(negatives="random")
    rec.device = "cpu"
    rec.build()
    x, ids = rec.batch(np.arange(16), 0)
    loss, logs = rec.training_step((x, ids), 0)
    assert torch.isfinite(loss) and logs["negative_pairs"] > 0


@pytest.fixture(scope="module")
def vilt_run():
    """A 4-step ViLT run in the runs folder: the catalogue lists it as run-vilt-tiny-test."""
    if not fashion_mnist.is_available():
        pytest.skip("needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        drive(train(recipe(max_steps=4), RunFolder(runs_dir() / RUN), "cpu"))
    finally:
        torch.set_num_threads(before)
    return f"run-{RUN}"


def test_match_request_on_a_vilt_run(vilt_run):
    from engine import catalogue
    from engine.core import Engine
    from engine.data.samples import fashion_mnist_samples

    assert catalogue.get(vilt_run).family == "vilt" and vilt_run in [e.id for e in catalogue.entries("match")]
    sample = fashion_mnist_samples(1)[0][0]
    captions = ["a photo of a t-shirt.", "a photo of a bag."]
    engine = Engine(device="cpu").start()
    try:
        engine.wait_ready()
        res = engine.submit("match", {"path": sample, "captions": captions, "model_id": vilt_run}).result()
    finally:
        engine.shutdown()
    assert res.family == "vilt" and res.grid == (4, 4) and res.layer == 0
    assert [c.text for c in res.captions] == captions
    for c in res.captions:
        assert c.itc_similarity is None and c.itc_probability is None  # no separate embeddings
        assert 0.0 <= c.itm_probability <= 1.0 and c.words[:3] == ("a", "photo", "of")
        assert c.word_maps.shape == (len(c.words), 4, 4) and c.word_overlays.shape == (len(c.words), 196, 196, 3)
        assert np.isfinite(c.word_maps).all() and c.caption_map.max() == pytest.approx(1.0)


def test_cli_match_with_a_vilt_model(vilt_run, tmp_path, capsys):
    from PIL import Image

    from main import main

    path = tmp_path / "grey.png"
    Image.new("L", (28, 28), 128).save(path)
    assert main(["match", str(path), "a photo of a bag.", "a photo of a shirt.", "--model", vilt_run,
                 "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{path}: {vilt_run}, word maps from layer 1" and all("—" in r for r in lines[2:4])
    assert main(["match", str(path), "a photo of a bag.", "--model", vilt_run, "--json", "--device", "cpu"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["model"] == vilt_run and record["captions"][0]["itc_similarity"] is None
