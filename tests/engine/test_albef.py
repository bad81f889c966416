"""ALBEF: the recipe in the shared loop (steps, exact resume), its hard negatives and
momentum-distillation targets, caption noise, and the "match" request on the built-in model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.data import captions as fm_captions
from engine.data import fashion_mnist
from engine.models.albef import itc_targets, sample_hard_negatives
from engine.runs.checkpoint import RunFolder
from engine.train.loop import train
from engine.train.recipes import recipe_class
from tests.engine.training import drive

needs_fmnist = pytest.mark.skipif(not fashion_mnist.is_available(), reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")
SMALL = {"train_limit": 64, "test_limit": 30, "batch_size": 16, "max_steps": 4, "queue_size": 32,
         "fusion_layers": 1, "log_every": 1, "checkpoint_every": 2, "eval_batch_size": 15, "caption_noise": 0.25}


def recipe(**config):
    rec = recipe_class("albef")({**SMALL, **config}, "fashion-mnist")
    for _ in rec.prepare():
        pass
    return rec


@needs_fmnist
def test_recipe_trains_evaluates_and_resumes_exactly(tmp_path):
    from safetensors.torch import load_file

    result, partials = drive(train(recipe(), RunFolder(tmp_path / "straight"), "cpu"))
    steps = [p for p in partials if p.get("kind") == "train"]
    assert len(steps) == 4 and all(np.isfinite(p["loss_itc"]) and np.isfinite(p["loss_itm"]) for p in steps)
    for key in ("zero_shot_accuracy", "itm_rerank_accuracy", "itm_accuracy", "itm_matched_accuracy"):
        assert 0.0 <= result["metrics"][key] <= 1.0
    m = result["metrics"]
    assert m["itm_accuracy"] == pytest.approx((m["itm_matched_accuracy"] + m["itm_mismatched_accuracy"]) / 2)
    drive(train(recipe(), RunFolder(tmp_path / "stopped"), "cpu"), stop_after_step=2)
    stopped = RunFolder(tmp_path / "stopped")
    assert stopped.read_card()["status"] == "stopped"
    result, _ = drive(train(recipe(), stopped, "cpu", resume=True))  # the queue and momentum model come back too
    assert result["step"] == 4
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "stopped" / "model.safetensors"))
    # Bit-exact: the queue and momentum model come back, and nothing sums in a thread-dependent order.
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not any(k.startswith("momentum") or "queue" in k for k in a)  # only the model is published


@needs_fmnist
def test_caption_noise_swaps_that_fraction_for_a_wrong_class():
    rec = recipe(train_limit=4000, caption_noise=0.3)
    ids = rec._caption_ids(0)
    wrong = rec.captions.label[ids] != rec.train_y
    assert abs(wrong.mean() - 0.3) < 0.03
    assert np.array_equal(ids, rec._caption_ids(0))  # fixed by seed and epoch: resume sees the same noise
    clean = recipe(train_limit=4000, caption_noise=0.0)._caption_ids(0)
    assert (rec.captions.label[clean] == rec.train_y).all()


def test_hard_negatives_are_never_positives():
    g = torch.Generator().manual_seed(0)
    classes = torch.tensor([0, 0, 1, 2, 2, 2, 3, 1])
    same = classes[:, None] == classes[None, :]
    for _ in range(50):
        sim = torch.randn(8, 8) * 5
        idx, valid = sample_hard_negatives(sim, same, g)
        assert valid.all() and not same[torch.arange(8), idx].any()
    # A batch of one class has no negative at all: every row is invalid.
    one = torch.ones(4, 4, dtype=torch.bool)
    _, valid = sample_hard_negatives(torch.randn(4, 4), one, g)
    assert not valid.any()
    # They are hard: the most similar non-positive is drawn most often.
    sim = torch.zeros(8, 8)
    sim[0, 2] = 4.0
    draws = torch.stack([sample_hard_negatives(sim, same, g)[0][0] for _ in range(200)])
    assert (draws == 2).float().mean() > 0.7


def test_distillation_alpha_zero_is_the_plain_itc_target():
    sim_m = torch.randn(4, 10)
    positives = torch.zeros(4, 10, dtype=torch.bool)
    positives[torch.arange(4), torch.arange(4)] = True
    positives[0, 7] = True  # a queued feature of the same caption class
    plain = itc_targets(sim_m, positives, 0.0)
    assert torch.equal(plain[1:], positives[1:].float()) and torch.allclose(plain[0, [0, 7]], torch.tensor([0.5, 0.5]))
    mixed = itc_targets(sim_m, positives, 0.4)
    assert torch.allclose(mixed.sum(1), torch.ones(4))
    assert torch.allclose(mixed, 0.4 * sim_m.softmax(1) + 0.6 * plain)


BUILTIN = "fmnist-albef-tiny"
EASY = (1, 5, 7, 8, 9)  # trouser, sandal, sneaker, bag, ankle boot: the first test image of each


@needs_fmnist
def test_builtin_card_and_catalogue_entry():
    import hashlib
    import json

    from engine import catalogue
    from engine.resources import RESOURCES

    entry = catalogue.get(BUILTIN)
    assert entry.family == "albef" and "match" in entry.panels
    weights = RESOURCES / "checkpoints" / BUILTIN / "model.safetensors"
    card = json.loads(weights.with_name("card.json").read_text())
    assert entry.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest() == card["sha256"]
    assert weights.stat().st_size <= 6 * 2**20
    assert card["recipe"] == "albef" and card["status"] == "finished"
    assert card["command"] == "python main.py train albef --dataset fashion-mnist"
    m = card["metrics"]
    assert m["zero_shot_accuracy"] > 0.7 and m["itm_rerank_accuracy"] > 0.7 and m["itm_accuracy"] > 0.8


@needs_fmnist
def test_match_request_scores_maps_and_ranks_the_true_class_first():
    from engine.core import Engine
    from engine.data.samples import fashion_mnist_samples
    from engine.errors import JobFailed

    samples = fashion_mnist_samples(10)
    prompts = [fm_captions.prompts(c)[0] for c in range(10)]
    engine = Engine(device="cpu").start()
    try:
        engine.wait_ready()
        results = {c: engine.submit("match", {"path": samples[c][0], "captions": prompts}).result() for c in EASY}
        with pytest.raises(JobFailed, match="at least one caption"):
            engine.submit("match", {"path": samples[0][0], "captions": ["  "]}).result()
    finally:
        engine.shutdown()
    for label, res in results.items():
        assert res.grid == (4, 4) and res.image.shape == (196, 196, 3) and len(res.captions) == 10
        for c in res.captions:
            assert c.word_maps.shape == (len(c.words), 4, 4) and c.word_overlays.shape == (len(c.words), 196, 196, 3)
            assert c.caption_map.shape == (4, 4) and 0.0 <= c.itm_probability <= 1.0
            assert np.isfinite(c.word_maps).all() and c.word_maps.max() == pytest.approx(1.0)  # never all zero
            assert c.caption_map.max() == pytest.approx(1.0)
        assert c.words[:3] == ("a", "photo", "of")
        assert int(np.argmax([c.itc_similarity for c in res.captions])) == label
        assert int(np.argmax([c.itm_probability for c in res.captions])) == label
        assert sum(c.itc_probability for c in res.captions) == pytest.approx(1.0, abs=1e-4)
