"""The Train panel's CLIP view: a real CLIP run's batch similarity matrix becomes a heat map,
and a MoCo record afterwards brings the histograms back."""
from __future__ import annotations

import numpy as np
import pytest

from engine.data import fashion_mnist

pytestmark = pytest.mark.skipif(not fashion_mnist.is_available(), reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")


def _clip_partials(tmp_path) -> list[dict]:
    from engine.runs.checkpoint import RunFolder
    from engine.train.loop import train
    from engine.train.recipes.clip import CLIPRecipe

    rec = CLIPRecipe({"max_steps": 2, "batch_size": 8, "train_limit": 32, "test_limit": 50, "eval_every": 0,
                      "embed_dim": 32, "log_every": 1}, "fashion-mnist")
    for _ in rec.prepare():
        pass
    gen, out = train(rec, RunFolder(tmp_path / "clip"), "cpu", command="test"), []
    for item in gen:
        if hasattr(item, "value") and isinstance(item.value, dict):
            out.append(item.value)
    return out


def test_clip_similarity_matrix_is_drawn_then_moco_histograms_return(qtbot, tmp_path):
    from gui.panels.train.plots import LivePlots

    plots = LivePlots()
    qtbot.addWidget(plots)
    plots.resize(900, 600)
    plots.show()
    records = [r for r in _clip_partials(tmp_path) if r.get("kind") == "train"]
    assert records and "similarity" in records[-1]
    for r in records:
        plots.add_record("clip-run", r)
    matrix = records[-1]["similarity"]
    assert plots.sim_image.isVisible() and plots.plots["similarity"].isVisible()
    assert np.array_equal(plots.sim_image.image, matrix.astype(np.float32))
    assert np.allclose(matrix.sum(1), 1.0, atol=1e-5)  # a softmax over the batch's texts per image
    assert "diagonal" in plots.plots["similarity"].titleLabel.text
    qtbot.wait(400)  # one redraw of the curves
    plots.grab().save(str(tmp_path / "clip_plots.png"))

    edges = len(plots.hist_edges) - 1
    plots.add_record("moco-run", {"kind": "train", "step": 1, "loss": 1.0, "queue_fill": 0.5,
                                  "similarities": {"positive": [1.0] * edges, "negative": [0.5] * edges}})
    assert not plots.sim_image.isVisible()
    assert "Contrastive" in plots.plots["similarity"].titleLabel.text
