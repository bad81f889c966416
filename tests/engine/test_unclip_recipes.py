"""The CLIP/LiT and unCLIP recipes run in the one training loop: tiny configs, a few steps.

Needs Fashion-MNIST (the Debian package) and, for the unCLIP recipes, the built-in LiT.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from safetensors.torch import load_file

from engine.data import fashion_mnist
from engine.runs.checkpoint import RunFolder
from engine.train.loop import train
from tests.engine.training import drive

needs_fmnist = pytest.mark.skipif(not fashion_mnist.is_available(),
                                  reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")
pytestmark = needs_fmnist


def prepare_and_train(recipe, path):
    for _ in recipe.prepare():
        pass
    return drive(train(recipe, RunFolder(path), "cpu", command="test"))


def test_a_tiny_lit_trains_and_its_weights_hold_no_text_tower(tmp_path):
    from engine.models.lit import load_lit
    from engine.train.recipes.clip import LiTRecipe

    rec = LiTRecipe({"max_steps": 3, "batch_size": 16, "train_limit": 64, "test_limit": 100, "log_every": 1,
                     "eval_every": 0}, "fashion-mnist")
    result, partials = prepare_and_train(rec, tmp_path / "lit")
    assert result["status"] == "finished" and result["step"] == 3
    logs = [p for p in partials if p.get("kind") == "train"]
    assert len(logs) == 3 and all(math.isfinite(p["loss"]) for p in logs)
    assert logs[-1]["similarity"].shape == (16, 16)  # the Train panel's heat map
    metrics = result["metrics"]
    assert 0.0 <= metrics["zero_shot_accuracy"] <= 1.0 and len(metrics["per_class"]) == 10
    keys = load_file(str(tmp_path / "lit" / "model.safetensors")).keys()
    assert any(k.startswith("visual.") for k in keys) and "image_proj.weight" in keys and "text_proj.weight" in keys
    assert not any(k.startswith("text.") for k in keys)  # MiniLM stays in its package
    card = RunFolder(tmp_path / "lit").read_card()
    assert card["catalogue"]["family"] == "clip" and "generate" in card["catalogue"]["panels"]
    model = load_lit(tmp_path / "lit" / "model.safetensors")
    emb = model.encode_text(["a photo of a sneaker.", "a photo of a bag."])
    assert emb.shape == (2, 128) and np.allclose(emb.norm(dim=1).detach().numpy(), 1.0, atol=1e-5)


def test_clip_with_a_trainable_tiny_text_tower(tmp_path):
    from engine.train.recipes.clip import CLIPRecipe

    rec = CLIPRecipe({"max_steps": 2, "batch_size": 8, "train_limit": 32, "test_limit": 50, "eval_every": 0,
                      "embed_dim": 32}, "fashion-mnist")
    result, _ = prepare_and_train(rec, tmp_path / "clip")
    assert result["status"] == "finished"
    keys = load_file(str(tmp_path / "clip" / "model.safetensors")).keys()
    assert any(k.startswith("text.") for k in keys)  # the text tower learned, so it is saved


@pytest.mark.parametrize("kind", ["diffusion", "regression"])
def test_prior_recipe(tmp_path, kind):
    from engine.generate.unclip import load_prior
    from engine.train.recipes.unclip import PriorRecipe

    rec = PriorRecipe({"kind": kind, "max_steps": 3, "batch_size": 32, "train_limit": 64, "test_limit": 100,
                       "eval_samples": 4, "sample_steps": 4, "eval_every": 0}, "fashion-mnist")
    result, _ = prepare_and_train(rec, tmp_path / kind)
    m = result["metrics"]
    assert 0.0 <= m["embedding_class_accuracy"] <= 1.0 and math.isfinite(m["test_loss"])
    if kind == "regression":
        assert m["diversity"] < 1e-5  # one embedding per prompt
    card = RunFolder(tmp_path / kind).read_card()
    assert card["catalogue"]["family"] == "unclip-prior" and card["catalogue"]["arch"] == kind
    prior = load_prior(tmp_path / kind / "model.safetensors")
    assert prior.config.kind == kind


def test_decoder_recipe_publishes_the_ema_and_resumes_its_online_weights(tmp_path):
    from engine.generate.unclip import load_decoder
    from engine.train.recipes.unclip import DecoderRecipe

    cfg = {"max_steps": 3, "batch_size": 8, "train_limit": 64, "test_limit": 100, "eval_images": 10,
           "eval_steps": 2, "channels": "8,16", "mid_channels": 16, "log_every": 1}
    rec = DecoderRecipe(cfg, "fashion-mnist")
    result, partials = prepare_and_train(rec, tmp_path / "dec")
    assert result["status"] == "finished"
    assert 0.0 <= result["metrics"]["reconstruction_class_accuracy"] <= 1.0
    preview = [p for p in partials if "denoise_preview" in p][-1]["denoise_preview"]
    assert preview.shape == (8, 28, 28) and preview.dtype == np.uint8
    decoder = load_decoder(tmp_path / "dec" / "model.safetensors")
    ema = rec.ema.state_dict()
    assert all(np.array_equal(decoder.state_dict()[k].numpy(), ema[k].numpy()) for k in ema)
    _, tensors, _ = RunFolder(tmp_path / "dec").load()
    assert any(k.startswith("module/online/") for k in tensors)  # the trained weights, for resuming
