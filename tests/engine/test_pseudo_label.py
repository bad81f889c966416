"""Pseudo-labels: only confident predictions become labels, the pool shrinks (or is labelled
afresh), the per-round metrics agree with each other, and a run stopped mid-round resumes to
bit-identical weights. Tiny runs on generated class folders (a few hundred images, seconds)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.runs.checkpoint import RunFolder
from engine.errors import TrainingError
from engine.train.loop import train
from engine.train.pseudo_label_rules import UNLABELLED, accept, labelled_per_class, pseudo_stats
from engine.train.recipes.pseudo_label import PseudoLabelRecipe
from tests.engine.training import drive, one_thread, write_shapes  # noqa: F401 - one_thread is a fixture

#: Three classes of 16×16 shapes, 4 labels each; rounds of 6 steps; a threshold a weak model reaches.
TINY = {"embed_dim": 16, "depth": 1, "num_heads": 2, "patch_size": 4, "batch_size": 8, "image_size": 16,
        "grayscale": True, "log_every": 1, "eval_batch_size": 32, "labels_per_class": 4,
        "steps_per_round": 6, "epochs": 3, "threshold": 0.4, "lr": 3e-3, "checkpoint_seconds": 1e9}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> str:
    """stripes, bars and checks: 50 noisy images each (40 train, 10 test per class)."""
    return write_shapes(tmp_path_factory.mktemp("shapes"), per_class=50, seed=1)


def make(dataset: str, **config) -> PseudoLabelRecipe:
    rec = PseudoLabelRecipe({**TINY, **config}, dataset)
    for _ in rec.prepare():
        pass
    return rec


class Watched(PseudoLabelRecipe):
    """Records every pass over the pool: (pool, pred, conf, pseudo-labels before, after)."""

    def after_step(self, step: int) -> None:
        before = self.pseudo.copy()
        seen = []
        predict = self.predict
        self.predict = lambda idx: seen.append((idx, *predict(idx))) or seen[-1][1:]
        try:
            super().after_step(step)
        finally:
            del self.predict
        if seen:
            self.passes.append((*seen[0], before, self.pseudo.copy()))


def watched(dataset: str, **config) -> Watched:
    rec = Watched({**TINY, **config}, dataset)
    rec.passes = []
    for _ in rec.prepare():
        pass
    return rec


# ------------------------------------------------------------------------------ the rules, without a model
def test_accept_takes_only_predictions_at_or_above_the_threshold():
    pseudo = np.full(6, UNLABELLED)
    pool = np.array([1, 2, 4, 5])
    out = accept(pseudo, pool, pred=np.array([0, 1, 2, 1]), conf=np.array([0.5, 0.9, 0.89, 0.95]),
                 threshold=0.9, relabel=False)
    assert out.tolist() == [UNLABELLED, UNLABELLED, 1, UNLABELLED, UNLABELLED, 1]
    assert (accept(pseudo, pool, np.zeros(4, int), np.ones(4), threshold=1.01, relabel=False) == UNLABELLED).all()


def test_kept_labels_stay_while_relabel_starts_afresh_and_class_limit_keeps_the_surest():
    pseudo = np.array([UNLABELLED, 2, UNLABELLED, UNLABELLED])
    # kept: image 1 is not in the pool any more and keeps its label
    kept = accept(pseudo, np.array([0, 2, 3]), np.array([0, 0, 1]), np.array([0.99, 0.2, 0.97]), 0.9, False)
    assert kept.tolist() == [0, 2, UNLABELLED, 1]
    # relabel: the whole pool is predicted again; image 1 drops out below the threshold
    again = accept(kept, np.array([0, 1, 2, 3]), np.array([0, 1, 0, 1]), np.array([0.99, 0.5, 0.95, 0.2]),
                   0.9, True)
    assert again.tolist() == [0, UNLABELLED, 0, UNLABELLED]
    # class_limit=1: of the two confident class-0 images the surer one, the class-1 one too
    capped = accept(np.full(4, UNLABELLED), np.arange(4), np.array([0, 0, 1, 0]),
                    np.array([0.95, 0.99, 0.96, 0.5]), 0.9, False, class_limit=1)
    assert capped.tolist() == [UNLABELLED, 0, 1, UNLABELLED]


def test_labelled_per_class_and_stats():
    labels = np.repeat(np.arange(3), [5, 2, 7])
    idx = labelled_per_class(labels, 3, seed=0)
    assert np.bincount(labels[idx]).tolist() == [3, 2, 3] and (np.diff(idx) > 0).all()
    assert idx.tolist() == labelled_per_class(labels, 3, seed=0).tolist()
    pseudo = np.array([0, 1, UNLABELLED, 2, 2])
    s = pseudo_stats(pseudo, true=np.array([0, 2, 1, 2, 0]), unlabelled=5, num_classes=3)
    assert s["pseudo_labels"] == 4 and s["pseudo_label_accuracy"] == 0.5 and s["pseudo_label_coverage"] == 0.8
    assert s["pseudo_label_counts"].tolist() == [1, 1, 2] and s["pseudo_label_confusion"].sum() == 4


def test_settings_are_checked(shapes):
    with pytest.raises(TrainingError, match="eval_every"):
        PseudoLabelRecipe({"eval_every": 2}, shapes)
    with pytest.raises(TrainingError, match="threshold"):
        PseudoLabelRecipe({"threshold": 0}, shapes)


# ------------------------------------------------------------------------------ runs
def test_rounds_take_confident_labels_the_pool_shrinks_and_metrics_agree(shapes, tmp_path):
    rec = watched(shapes)
    result, partials = drive(train(rec, RunFolder(tmp_path / "run"), "cpu"))
    assert len(rec.passes) == 3  # one pass over the pool at the end of each round
    pools = [len(p[0]) for p in rec.passes]
    assert pools[0] == rec.unlabelled == 120 - 12  # 3×40 train images, 4 labelled per class
    for pool, pred, conf, before, after in rec.passes:
        new = after[pool] != before[pool]
        assert (conf[new] >= TINY["threshold"]).all()  # only confident predictions became labels
        assert ((conf >= TINY["threshold"]) == (after[pool] != UNLABELLED)).all()
        assert (after[pool][new] == pred[new]).all()
        assert ((before != UNLABELLED) <= (after == before)).all()  # a label once given is kept
    assert pools == sorted(pools, reverse=True) and pools[1] == pools[0] - (rec.passes[0][4] != UNLABELLED).sum()
    assert rec.passes[0][4][rec.labelled].tolist() == [UNLABELLED] * 12  # labelled images are never pseudo-labelled

    evals = [p for p in partials if p.get("kind") == "eval"]
    assert [e["round"] for e in evals] == [0, 1, 2]
    for e, (pool, pred, conf, before, after) in zip(evals, rec.passes):
        n = int((after != UNLABELLED).sum())
        assert e["pseudo_labels"] == n == int(np.sum(e["pseudo_label_counts"]))
        assert e["pseudo_label_coverage"] == n / rec.unlabelled
        correct = int((after[after != UNLABELLED] == rec.train_y[after != UNLABELLED]).sum())
        assert e["pseudo_label_accuracy"] == (correct / n if n else None)
        assert np.trace(e["pseudo_label_confusion"]) == correct
    assert [e["train_images"] for e in evals] == [12, 12 + evals[0]["pseudo_labels"], 12 + evals[1]["pseudo_labels"]]
    m = result["metrics"]
    assert m["round0_accuracy"] == evals[0]["accuracy"] and m["accuracy"] == evals[-1]["accuracy"]
    assert m["accuracy_gain"] == pytest.approx(m["accuracy"] - m["round0_accuracy"])
    assert [r["pseudo_labels"] for r in m["rounds"]] == [e["pseudo_labels"] for e in evals]
    assert evals[-1]["pseudo_labels"] > 0  # the threshold is low enough that the test sees labels taken
    live = [p for p in partials if "pseudo_label_counts" in p and p.get("kind") == "train"]
    assert live and list(live[-1]["pseudo_label_classes"]) == list(rec.classes)


def test_relabel_predicts_the_whole_pool_every_round(shapes, tmp_path):
    rec = watched(shapes, relabel=True, epochs=2)
    drive(train(rec, RunFolder(tmp_path / "run"), "cpu"))
    assert [len(p[0]) for p in rec.passes] == [rec.unlabelled] * 2


def test_stop_mid_round_and_resume_gives_the_weights_of_a_straight_run(shapes, tmp_path):
    straight = RunFolder(tmp_path / "straight")
    drive(train(make(shapes), straight, "cpu"))

    stopped = RunFolder(tmp_path / "stopped")
    _, partials = drive(train(make(shapes), stopped, "cpu"), stop_after_step=9)  # in round 1 (steps 7-12)
    assert stopped.load()[2]["step"] == 9 and stopped.read_card()["status"] == "stopped"
    assert sum(p.get("kind") == "eval" for p in partials) == 1
    resumed = make(shapes)
    result, _ = drive(train(resumed, stopped, "cpu", resume=True))
    assert result["status"] == "finished" and result["step"] == 18

    a, b = straight.load()[0], stopped.load()[0]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert straight.read_card()["metrics"]["rounds"] == stopped.read_card()["metrics"]["rounds"]


def test_stop_between_a_rounds_last_step_and_its_evaluation_still_evaluates_it_on_resume(shapes, tmp_path):
    """The stop lands after step 6's record, before round 0's evaluation: the resumed run runs
    that evaluation first, so the round table and the weights match a straight run's."""
    straight = RunFolder(tmp_path / "straight")
    drive(train(make(shapes, epochs=2), straight, "cpu"))
    stopped = RunFolder(tmp_path / "stopped")
    _, partials = drive(train(make(shapes, epochs=2), stopped, "cpu"), stop_after_step=6)
    assert not any(p.get("kind") == "eval" for p in partials)
    assert stopped.load()[2]["eval_pending"] is True
    result, partials = drive(train(make(shapes, epochs=2), stopped, "cpu", resume=True))
    assert result["step"] == 12 and [p["step"] for p in partials if p.get("kind") == "eval"] == [6, 12]
    assert straight.read_card()["metrics"]["rounds"] == stopped.read_card()["metrics"]["rounds"]
    a, b = straight.load(), stopped.load()
    assert all(torch.equal(a[0][k], b[0][k]) for k in a[0])
    assert torch.equal(a[1]["recipe/history"].nan_to_num(-1), b[1]["recipe/history"].nan_to_num(-1))
