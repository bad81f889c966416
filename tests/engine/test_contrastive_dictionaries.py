"""SimCLR (the batch as the dictionary) and InstDisc (a memory bank): NT-Xent by hand, the
bank's update touching exactly the batch's rows, both recipes through the real loop with
bit-identical resume (bank included), and both listed by the engine request the Train panel uses.

Tiny ResNets and a generated 16×16 dataset: the whole file runs in seconds.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.runs.checkpoint import RunFolder
from engine.train.loop import _seed_all, train
from engine.train.memory_bank import InstDisc, MemoryBank
from engine.train.recipes.instdisc import InstDiscRecipe
from engine.train.recipes.simclr import SimCLRRecipe
from engine.train.nt_xent import SimCLR, nt_xent, positives_negatives
from tests.engine.test_moco import Flat, prepared, shapes  # noqa: F401  (fixtures)
from tests.engine.training import drive, one_thread  # noqa: F401  (one_thread: autouse)

TINY = {"width": 4, "batch_size": 8, "dim": 8, "image_size": 16, "grayscale": True, "log_every": 1, "knn_k": 5,
        "eval_batch_size": 16, "test_fraction": 0.25}
TINY_INSTDISC = {**TINY, "K": 16}


# ------------------------------------------------------------------------------ NT-Xent
def test_nt_xent_equals_the_loss_computed_by_hand():
    # Two images, two views each (already unit vectors). Dot products:
    # a1·b1 = 0.6, a1·b2 = 0.8, a1·a2 = 0, a2·b1 = 0.8, a2·b2 = 0.6, b1·b2 = 0.96.
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # a1, a2
    z2 = torch.tensor([[0.6, 0.8], [0.8, 0.6]])  # b1, b2
    T = 0.5
    loss, sim, target = nt_xent(z1, z2, T)
    # Each row: -log(e^{pos/T} / Σ over the 3 others e^{s/T}); rows a1, a2 alike, rows b1, b2 alike.
    row_a = -math.log(math.exp(0.6 / T) / (math.exp(0.6 / T) + math.exp(0.0 / T) + math.exp(0.8 / T)))
    row_b = -math.log(math.exp(0.6 / T) / (math.exp(0.6 / T) + math.exp(0.8 / T) + math.exp(0.96 / T)))
    assert loss.item() == pytest.approx((2 * row_a + 2 * row_b) / 4, abs=1e-6)
    assert target.tolist() == [2, 3, 0, 1]
    pos, neg, acc = positives_negatives(sim, target)
    assert pos.tolist() == pytest.approx([0.6] * 4)
    assert sorted(neg.tolist()) == pytest.approx(sorted([0.0, 0.8, 0.0, 0.8, 0.8, 0.96, 0.8, 0.96]))  # 2N-2 per view
    assert acc.item() == 0.0  # every view is nearer a negative than its positive here
    # Scale does not matter (NT-Xent normalises) and a single image has no negatives left but its pair.
    assert nt_xent(3 * z1, 2 * z2, T)[0].item() == pytest.approx(loss.item(), abs=1e-6)


def test_simclr_sends_both_views_through_one_encoder_with_gradients():
    torch.manual_seed(0)
    model = SimCLR(Flat(), dim=3, T=0.2)
    x1, x2 = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    loss, sim, target = model(x1, x2)
    loss.backward()
    assert sim.shape == (8, 8) and all(p.grad is not None for p in model.parameters())
    with torch.no_grad():
        z = F.normalize(model.encoder(torch.cat([x1, x2])), dim=1)
    assert torch.allclose(sim, z @ z.t(), atol=1e-6)
    assert model(x2, x1)[0].item() == pytest.approx(loss.item(), rel=1e-5)  # symmetric in the two views


# ------------------------------------------------------------------------------ the memory bank
def test_memory_bank_update_touches_exactly_the_batch_rows():
    torch.manual_seed(0)
    bank = MemoryBank(10, dim=3, m=0.5)
    before = bank.bank.clone()
    assert torch.allclose(before.norm(dim=1), torch.ones(10)) and bank.fill() == 0.0
    idx = torch.tensor([7, 2, 5])
    feats = F.normalize(torch.randn(3, 3), dim=1)
    bank.update(idx, feats, step=4)
    expected = F.normalize(0.5 * before[idx] + 0.5 * feats, dim=1)
    assert torch.allclose(bank.bank[idx], expected, atol=1e-7)
    others = torch.tensor([i for i in range(10) if i not in (7, 2, 5)])
    assert torch.equal(bank.bank[others], before[others])  # untouched, bit for bit
    assert bank.written_at.tolist() == [0, 0, 4, 0, 0, 4, 0, 4, 0, 0] and bank.fill() == pytest.approx(0.3)
    assert bank.staleness(torch.tensor([2, 0]), step=6) == pytest.approx((2 + 6) / 2)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(bank.sample(50, g1), bank.sample(50, g2))  # seeded
    assert int(bank.sample(500, g1).max()) <= 9


def test_instdisc_positive_is_the_own_entry_and_the_bank_gets_no_gradient():
    torch.manual_seed(0)
    model = InstDisc(Flat(), n=12, dim=3, K=5, m=0.5, T=0.1)
    idx = torch.tensor([3, 8])
    loss, logits, l_pos, l_neg, q, neg_idx = model(torch.randn(2, 1, 2, 2), idx, torch.Generator().manual_seed(0))
    loss.backward()
    assert logits.shape == (2, 6) and neg_idx.shape == (5,)
    assert torch.allclose(l_pos[:, 0], (q * model.memory.bank[idx]).sum(1), atol=1e-6)
    assert torch.allclose(l_neg, q @ model.memory.bank[neg_idx].t(), atol=1e-6)
    assert all(p.grad is not None for p in model.encoder.parameters()) and model.memory.bank.grad is None


def test_instdisc_through_the_loop_writes_exactly_each_steps_batch(shapes, tmp_path):
    rec = prepared(InstDiscRecipe, shapes, **TINY_INSTDISC, max_steps=2)
    drive(train(rec, RunFolder(tmp_path / "run"), "cpu"))
    fresh = prepared(InstDiscRecipe, shapes, **TINY_INSTDISC, max_steps=2)
    _seed_all(fresh.config.seed)  # the bank as the loop builds it, before any step
    fresh.build()
    batches = list(rec.order.batches(0))
    written = rec.instdisc.memory.written_at
    for step, idx in enumerate(batches[:2], start=1):
        assert sorted(np.flatnonzero(written.numpy() == step)) == sorted(idx)
    untouched = written == 0
    assert int(untouched.sum()) == len(rec.train_x) - 16
    assert torch.equal(rec.instdisc.memory.bank[untouched], fresh.instdisc.memory.bank[untouched])
    assert not torch.equal(rec.instdisc.memory.bank[~untouched], fresh.instdisc.memory.bank[~untouched])


# ------------------------------------------------------------------------------ recipes through the loop
@pytest.mark.parametrize("cls, config", [(SimCLRRecipe, TINY), (InstDiscRecipe, TINY_INSTDISC)],
                         ids=["simclr", "instdisc"])
def test_recipe_trains_and_resumes_bit_identically(cls, config, shapes, tmp_path):
    config = {**config, "max_steps": 8, "checkpoint_every": 4}
    straight = RunFolder(tmp_path / "straight")
    result, partials = drive(train(prepared(cls, shapes, **config), straight, "cpu"))
    assert result["status"] == "finished"
    records = [p for p in partials if p["kind"] == "train"]
    assert len(records) == 8 and all(np.isfinite(r["loss"]) for r in records)
    assert {"acc", "pos_sim", "neg_sim"} <= set(records[-1])
    sims = records[-1]["similarities"]
    assert len(sims["positive"]) == len(sims["negative"]) == 40
    assert {"knn_acc", "knn_acc_random_init"} <= set(result["metrics"])
    if cls is InstDiscRecipe:
        # 27 training images, 8 a batch: 3 batches an epoch, so steps 6-8 sample entries written 1-5 steps ago.
        assert records[0]["bank_fill"] == 0.0 and records[-1]["bank_fill"] == 1.0
        assert records[0]["bank_staleness"] == 1.0 and 0 < records[-1]["bank_staleness"] < 8

    stopped = RunFolder(tmp_path / "stopped")
    gen = train(prepared(cls, shapes, **config), stopped, "cpu")
    for item in gen:
        if getattr(item, "done", None) == 5:
            gen.close()
            break
    assert stopped.read_card()["status"] == "stopped" and stopped.read_card()["step"] == 5
    drive(train(prepared(cls, shapes, **config), stopped, "cpu", resume=True))
    a = {r["step"]: r["loss"] for r in straight.read_metrics() if r["kind"] == "train"}
    b = {r["step"]: r["loss"] for r in stopped.read_metrics() if r["kind"] == "train"}
    assert sorted(b) == list(range(1, 9))
    assert [b[s] for s in range(6, 9)] == [a[s] for s in range(6, 9)]  # bit-identical
    weights_a, tensors_a, _ = straight.load()
    weights_b, tensors_b, _ = stopped.load()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    modules = sorted(k for k in tensors_a if k.startswith("module/"))
    assert modules and all(torch.equal(tensors_a[k], tensors_b[k]) for k in modules)
    if cls is InstDiscRecipe:
        assert tensors_b["module/instdisc/memory.bank"].shape == (27, 8)
        assert int(tensors_b["module/instdisc/memory.written_at"].max()) == 8


def test_the_train_panels_recipe_request_lists_both_with_their_settings():
    from engine.core import Engine

    eng = Engine(device="cpu").start()
    try:
        assert eng.wait_ready(60)
        infos = {i.name: i for i in eng.submit("train_recipes", {}).result(60)}  # what the panel asks for
    finally:
        eng.shutdown()
    for name, keys in (("simclr", {"T", "dim", "batch_size"}), ("instdisc", {"K", "m", "T", "dim"})):
        info = infos[name]
        assert info.available, info.error
        assert info.dataset_kinds == ("fashion-mnist", "classes", "unlabelled")
        assert keys <= {f.name for f in info.fields} and info.choices["backbone"] == ("resnet", "vit")
    assert "memory bank" in infos["instdisc"].summary and "dictionary" in infos["simclr"].summary
    k = next(f for f in infos["instdisc"].fields if f.name == "K")
    assert k.default == 4096 and "bank" in k.help
