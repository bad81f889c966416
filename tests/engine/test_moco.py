"""MoCo v2/v3: the queue, the momentum update, InfoNCE, no gradients into the key encoder,
exact resume (queue and key encoder included), the kNN monitor, the two-view preview.

Tiny models and a generated 16×16 dataset: the whole file runs in seconds.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.runs.checkpoint import RunFolder
from engine.train.loop import train
from engine.models.momentum import cosine_momentum, momentum_update
from engine.train.moco import MoCo, MoCoV3, contrastive_loss_v3, info_nce
from engine.train.recipes.moco_v2 import MoCoV2Recipe
from engine.train.recipes.moco_v3 import MoCoV3Recipe
from tests.engine.training import drive, one_thread, write_shapes  # noqa: F401  (one_thread: autouse)

#: A MoCo v2 run that takes a few hundred milliseconds: width-4 ResNet, K = 24.
TINY_V2 = {"width": 4, "batch_size": 8, "bn_splits": 2, "K": 24, "dim": 8, "image_size": 16, "grayscale": True,
           "log_every": 1, "knn_k": 5, "eval_batch_size": 16, "test_fraction": 0.25}
TINY_V3 = {"embed_dim": 16, "depth": 1, "num_heads": 2, "patch_size": 4, "dim": 8, "mlp_dim": 16, "batch_size": 8,
           "image_size": 16, "grayscale": True, "log_every": 1, "knn_k": 5, "eval_batch_size": 16}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> str:
    """Class folders of 16×16 stripes, bars and checks with noise, 12 each."""
    return write_shapes(tmp_path_factory.mktemp("ssl-shapes"), per_class=12, seed=1)


class Flat(nn.Module):
    """A linear 'backbone' on (N, 1, 2, 2) inputs, enough to test the MoCo machinery."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.num_features = 6

    def forward(self, x):
        return self.fc(x.flatten(1))


def prepared(cls, dataset, **config):
    rec = cls(config, dataset)
    for _ in rec.prepare():
        pass
    return rec


# ------------------------------------------------------------------------------ the pieces
def test_queue_is_a_fifo_ring_that_wraps_and_drops_the_oldest_keys():
    torch.manual_seed(0)
    moco = MoCo(Flat(), dim=3, K=5)
    initial = moco.queue.clone()
    assert torch.allclose(initial.norm(dim=0), torch.ones(5))  # starts as random unit keys
    batches = [torch.full((2, 3), float(i)) for i in (1, 2, 3)]
    moco._dequeue_and_enqueue(batches[0])
    assert int(moco.queue_ptr) == 2 and moco.queue_fill() == pytest.approx(0.4)
    assert torch.equal(moco.queue[:, :2], torch.ones(3, 2)) and torch.equal(moco.queue[:, 2:], initial[:, 2:])
    moco._dequeue_and_enqueue(batches[1])
    assert int(moco.queue_ptr) == 4
    moco._dequeue_and_enqueue(batches[2])  # slots 4 and 0: wraps, overwriting the oldest key
    assert int(moco.queue_ptr) == 1 and moco.queue_fill() == 1.0
    assert moco.queue[0].tolist() == [3.0, 1.0, 2.0, 2.0, 3.0]
    big = torch.arange(21.0).view(7, 3)  # more keys than K: the newest K stay
    moco._dequeue_and_enqueue(big)
    assert sorted(moco.queue[0].tolist()) == [6.0, 9.0, 12.0, 15.0, 18.0]


def test_momentum_update_follows_the_formula_and_leaves_the_query_encoder_alone():
    torch.manual_seed(0)
    moco = MoCo(Flat(), dim=3, K=4, m=0.9)
    for p in moco.encoder_q.parameters():  # make the two encoders differ
        p.data.add_(torch.randn_like(p))
    before_k = [p.clone() for p in moco.encoder_k.parameters()]
    q = [p.clone() for p in moco.encoder_q.parameters()]
    moco._momentum_update_key_encoder()
    for p_k, k0, q0, p_q in zip(moco.encoder_k.parameters(), before_k, q, moco.encoder_q.parameters()):
        assert torch.allclose(p_k, 0.9 * k0 + 0.1 * q0, atol=1e-7)
        assert torch.equal(p_q, q0)
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    momentum_update(a, b, 0.0)  # m = 0: a plain copy
    assert torch.equal(a.weight, b.weight)


def test_info_nce_is_cross_entropy_with_the_positive_in_column_0():
    q = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), dim=1)
    k = F.normalize(torch.tensor([[0.8, 0.6], [0.0, 1.0]]), dim=1)
    queue = F.normalize(torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]), dim=0)  # C x K = 2 x 3
    T = 0.5
    loss, logits, l_pos, l_neg = info_nce(q, k, queue, T)
    by_hand = torch.tensor([[0.8, 1.0, -1.0, 0.0], [0.8, 0.6, -0.6, 0.8]]) / T  # [q·k, q·queue] / T
    assert torch.allclose(logits, by_hand, atol=1e-6)
    expected = -torch.log_softmax(by_hand, dim=1)[:, 0].mean()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    assert torch.allclose(l_pos[:, 0], torch.tensor([0.8, 0.8])) and l_neg.shape == (2, 3)


def test_key_encoder_gets_no_gradients_only_the_query_encoder_learns():
    torch.manual_seed(0)
    moco = MoCo(Flat(), dim=3, K=8, shuffle_keys=True)
    x_q, x_k = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    loss, *_ = moco(x_q, x_k, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in moco.encoder_k.parameters())
    assert all(p.grad is not None for p in moco.encoder_q.parameters())
    assert moco.queue.grad is None and not moco.queue.requires_grad


def test_shuffled_keys_are_unshuffled_back_to_their_queries():
    torch.manual_seed(0)
    moco = MoCo(Flat(), dim=3, K=8, shuffle_keys=False)
    x = torch.randn(6, 1, 2, 2)
    plain = moco.keys(x)
    moco.shuffle_keys = True
    assert torch.allclose(moco.keys(x, torch.Generator().manual_seed(3)), plain, atol=1e-6)


def test_moco_v3_loss_is_symmetric_and_scaled_by_2T():
    torch.manual_seed(0)
    q, k = torch.randn(5, 4), torch.randn(5, 4)
    loss, logits = contrastive_loss_v3(q, k, 0.2)
    qn, kn = F.normalize(q, dim=1), F.normalize(k, dim=1)
    assert loss.item() == pytest.approx(F.cross_entropy(qn @ kn.t() / 0.2, torch.arange(5)).item() * 0.4, rel=1e-5)
    moco = MoCoV3(Flat(), dim=4, mlp_dim=8).eval()
    x1, x2 = torch.randn(6, 1, 2, 2), torch.randn(6, 1, 2, 2)
    assert moco(x1, x2)[0].item() == pytest.approx(moco(x2, x1)[0].item(), rel=1e-5)  # ctr(q1,k2) + ctr(q2,k1)
    assert all(not p.requires_grad for p in moco.encoder_k.parameters())
    assert not any(n.startswith("predictor") for n, _ in moco.encoder_k.named_parameters())
    assert cosine_momentum(0, 100, 0.99) == pytest.approx(0.99) and cosine_momentum(100, 100, 0.99) == 1.0


# ------------------------------------------------------------------------------ recipes through the loop
def test_moco_v2_resumes_exactly_with_its_queue_and_key_encoder(shapes, tmp_path):
    config = {**TINY_V2, "max_steps": 8, "checkpoint_every": 4}
    straight = RunFolder(tmp_path / "straight")
    result, partials = drive(train(prepared(MoCoV2Recipe, shapes, **config), straight, "cpu"))
    assert result["status"] == "finished"
    train_records = [p for p in partials if p["kind"] == "train"]
    assert len(train_records) == 8 and all(np.isfinite(r["loss"]) for r in train_records)
    assert train_records[-1]["queue_fill"] == 1.0 and train_records[0]["queue_fill"] == 0.0
    sims = train_records[-1]["similarities"]
    assert len(sims["positive"]) == len(sims["negative"]) == 40 and sims["queue_fill"] == 1.0
    assert {"knn_acc", "knn_acc_random_init"} <= set(result["metrics"])

    # Stop after step 5 (a checkpoint at the stop), resume, compare every later loss.
    stopped = RunFolder(tmp_path / "stopped")
    gen = train(prepared(MoCoV2Recipe, shapes, **config), stopped, "cpu")
    for item in gen:
        if getattr(item, "done", None) == 5:
            gen.close()
            break
    assert stopped.read_card()["status"] == "stopped" and stopped.read_card()["step"] == 5
    drive(train(prepared(MoCoV2Recipe, shapes, **config), stopped, "cpu", resume=True))
    a = {r["step"]: r["loss"] for r in straight.read_metrics() if r["kind"] == "train"}
    b = {r["step"]: r["loss"] for r in stopped.read_metrics() if r["kind"] == "train"}
    assert sorted(b) == list(range(1, 9))
    for step in range(6, 9):
        assert b[step] == pytest.approx(a[step], abs=1e-6), step
    _, tensors, _ = stopped.load()
    assert tensors["module/moco/queue"].shape == (8, 24) and int(tensors["module/moco/queue_ptr"]) == (8 * 8) % 24


def test_finished_ssl_run_is_an_ssl_backbone_in_the_catalogue(shapes, tmp_path, monkeypatch):
    from engine import catalogue
    from engine.catalogue.load import build_model
    from engine.paths import runs_dir

    rec = prepared(MoCoV3Recipe, shapes, **TINY_V3, max_steps=3)
    result, _ = drive(train(rec, RunFolder(runs_dir() / "v3-tiny"), "cpu"))
    assert result["status"] == "finished" and 0.0 <= result["metrics"]["knn_acc"] <= 1.0
    assert not any(p.requires_grad for p in rec.backbone.patch_embed.parameters())  # frozen random projection
    entry = catalogue.get("run-v3-tiny")
    assert entry.family == "ssl-backbone" and "train" in entry.panels and entry.preprocess.grayscale
    model = build_model(entry)
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model(x), rec.backbone.eval()(x), atol=1e-5)


def test_two_views_preview_for_fashion_mnist_or_a_folder(shapes):
    from engine.data import fashion_mnist
    from engine.train.preview import detect_kind, preview_job

    assert detect_kind(shapes) == "classes" and detect_kind("fashion-mnist") == "fashion-mnist"
    dataset = "fashion-mnist" if fashion_mnist.is_available() else shapes
    preview, _ = drive(preview_job(None, dataset, recipe="moco_v2", count=6, config={"image_size": 16}))
    assert len(preview.images) == len(preview.views) == len(preview.texts) == 6
    for image, (v1, v2) in zip(preview.images, preview.views):
        assert image.dtype == v1.dtype == v2.dtype == np.uint8 and v1.shape == v2.shape == image.shape
        assert not np.array_equal(v1, v2)  # two different augmentations of the same image
    again, _ = drive(preview_job(None, dataset, recipe="moco_v2", count=6, config={"image_size": 16}))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(preview.views, again.views))  # seeded
    plain, _ = drive(preview_job(None, shapes, recipe="supervised", count=3))
    assert plain.views == [] and set(plain.texts) <= {"stripes", "bars", "checks"} and plain.kind == "classes"


def test_augmented_views_stay_images_and_crop_within_bounds():
    from engine.data.augment import random_view, view_spec_for

    x = torch.full((4, 3, 32, 32), 200, dtype=torch.uint8)
    v = random_view(x, view_spec_for(32, 3), torch.Generator().manual_seed(0))
    assert v.shape == (4, 3, 32, 32) and float(v.min()) >= 0.0 and float(v.max()) <= 1.0
    gray = view_spec_for(28, 1)
    assert gray.blur == 0.0 and gray.saturation == 0.0 and gray.crop_scale[0] >= 0.3


def _knn(model, bank_x, bank_y, test_x, test_y, k=20):
    with torch.no_grad():
        fb = F.normalize(model((bank_x - 0.2860) / 0.3530), dim=1)
        ft = F.normalize(model((test_x - 0.2860) / 0.3530), dim=1)
    w, idx = (ft @ fb.t()).topk(k, dim=1)
    votes = torch.zeros(len(ft), 10).scatter_add_(1, bank_y[idx], (w / 0.1).exp())
    return float((votes.argmax(1) == test_y).float().mean())


def test_builtin_moco_backbone_has_learned_features():
    import json
    from pathlib import Path

    from engine import catalogue
    from engine.catalogue.load import build_model
    from engine.data import fashion_mnist
    from engine.models.backbones import SmallResNet

    if not fashion_mnist.is_available():
        pytest.skip("needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")
    entry = catalogue.get("fmnist-moco-v2-resnet16")
    assert entry.family == "ssl-backbone"
    model = build_model(entry)  # checks the SHA-256
    train, test = fashion_mnist.load_fashion_mnist("train"), fashion_mnist.load_fashion_mnist("test")
    bank_x = torch.from_numpy(train.images[:2000, None]).float() / 255
    test_x = torch.from_numpy(test.images[:500, None]).float() / 255
    bank_y, test_y = torch.from_numpy(train.labels[:2000]), torch.from_numpy(test.labels[:500])
    torch.manual_seed(0)
    learned = _knn(model, bank_x, bank_y, test_x, test_y)
    random_init = _knn(SmallResNet(1, 16).eval(), bank_x, bank_y, test_x, test_y)
    assert learned >= random_init + 0.08, (learned, random_init)
    card = json.loads((Path(__file__).resolve().parents[2] / "resources/checkpoints/fmnist-moco-v2-resnet16/card.json")
                      .read_text())
    assert card["status"] == "finished" and card["recipe"] == "moco_v2" and card["metrics"]["knn_acc"] >= 0.75
