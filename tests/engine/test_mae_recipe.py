"""The MAE pretraining recipe in the shared training loop: steps, live previews, evaluation
against the baseline, exact resume, and a run that the catalogue loads for the MAE panel."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.catalogue.dynamic import run_entries
from engine.catalogue.load import build_model
from engine.data import fashion_mnist
from engine.runs.checkpoint import RunFolder
from engine.train.loop import train
from engine.train.recipes import recipe_class
from engine.train.recipes.mae import MAERecipe
from tests.engine.training import drive

#: A 16-px MAE on a 4 x 4 grid: milliseconds a step.
SMALL = {"embed_dim": 16, "depth": 1, "num_heads": 2, "decoder_embed_dim": 16, "decoder_depth": 1,
         "decoder_num_heads": 2, "patch_size": 4, "image_size": 16, "grayscale": True, "batch_size": 8,
         "max_steps": 6, "log_every": 2, "preview_every": 2, "eval_batch_size": 16, "checkpoint_every": 3}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    """An unlabelled folder of 30 small images: soft blobs on dark backgrounds, some in sub-folders."""
    root = tmp_path_factory.mktemp("unlabelled")
    (root / "more").mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16]
    for i in range(30):
        cy, cx = rng.uniform(4, 12, 2)
        img = 220 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18) + rng.integers(0, 20, (16, 16))
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(root / ("more" if i % 3 else ".") / f"{i}.png")
    (root / "broken.png").write_bytes(b"\x89PNG not really")  # skipped with its reason, never fatal
    return str(root)


def recipe(dataset: str, **config) -> MAERecipe:
    rec = recipe_class("mae")({**SMALL, **config}, dataset)
    for _ in rec.prepare():
        pass
    return rec


def test_recipe_is_registered():
    assert recipe_class("mae") is MAERecipe


def test_trains_with_live_previews_and_scores_against_the_baseline(folder, tmp_path):
    rec = recipe(folder)
    assert rec.dataset_info["kind"] == "unlabelled-folder" and rec.dataset_info["skipped_count"] >= 1
    result, partials = drive(train(rec, RunFolder(tmp_path / "run"), "cpu"))
    assert result["status"] == "finished" and result["step"] == 6
    previews = [p["preview"] for p in partials if "preview" in p]
    assert [p["step"] for p in previews] == [2, 4, 6]
    for key in ("original", "masked", "reconstruction", "pasted"):
        assert previews[-1][key].shape == (16, 16, 3) and previews[-1][key].dtype == np.uint8
    assert np.array_equal(previews[0]["original"], previews[-1]["original"])  # a fixed image
    assert np.array_equal(previews[0]["masked"], previews[-1]["masked"])  # with a fixed mask
    assert not np.array_equal(previews[0]["reconstruction"], previews[-1]["reconstruction"])  # that learns
    m = result["metrics"]
    assert set(m) >= {"masked_mse", "baseline_mean_visible_mse", "baseline_nearby_visible_mse"}
    assert 0 < m["masked_mse"] < 1 and 0 < m["baseline_mean_visible_mse"] < 1
    # the arrays travel in the event only, never into the metrics log
    assert "preview" not in (tmp_path / "run" / "metrics.jsonl").read_text()


def test_resume_is_exact_and_previews_do_not_disturb_it(folder, tmp_path):
    _, _ = drive(train(recipe(folder), RunFolder(tmp_path / "straight"), "cpu"))
    _, _ = drive(train(recipe(folder), RunFolder(tmp_path / "stopped"), "cpu"), stop_after_step=4)
    stopped = RunFolder(tmp_path / "stopped")
    assert stopped.read_card()["status"] == "stopped"
    result, partials = drive(train(recipe(folder), stopped, "cpu", resume=True))
    assert result["step"] == 6 and any("preview" in p for p in partials)
    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "stopped" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_finished_run_is_an_mae_the_catalogue_can_load(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("PATCHWORK_HOME", str(tmp_path / "home"))
    from engine.paths import runs_dir

    run = RunFolder(runs_dir() / "mae-blobs")
    rec = recipe(folder, norm_pix_loss=True)
    drive(train(rec, run, "cpu"))
    entries = {e.id: e for e in run_entries()}
    entry = entries["run-mae-blobs"]
    assert entry.family == "mae" and "mae" in entry.panels and entry.preprocess.grayscale
    model = build_model(entry)
    assert model.norm_pix_loss and model.config.img_size == 16 and model.num_patches == 16
    x = torch.rand(2, 1, 16, 16)
    noise = torch.rand(2, 16)
    with torch.no_grad():
        rec.model.eval()
        expected = rec.model(x, 0.75, noise=noise)[1]
        assert torch.equal(model(x, 0.75, noise=noise)[1], expected)


def test_bad_settings_are_reported():
    from engine.errors import TrainingError

    with pytest.raises(TrainingError, match="mask_ratio"):
        MAERecipe({"mask_ratio": 1.0}, "fashion-mnist")
    with pytest.raises(TrainingError, match="preset"):
        MAERecipe({"model": "huge"}, "fashion-mnist")


@pytest.mark.skipif(not fashion_mnist.is_available(), reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")
def test_fashion_mnist_gives_the_builtin_geometry(tmp_path):
    rec = MAERecipe({"train_limit": 64, "eval_images": 32, "batch_size": 16, "max_steps": 2, "log_every": 1,
                     "preview_every": 1, "preview_index": 3}, "fashion-mnist")
    for _ in rec.prepare():
        pass
    result, partials = drive(train(rec, RunFolder(tmp_path / "fm"), "cpu"))
    assert (rec.mae_config.img_size, rec.mae_config.patch_size, rec.mae_config.num_patches) == (28, 4, 49)
    preview = [p["preview"] for p in partials if "preview" in p][-1]
    expected = fashion_mnist.load_fashion_mnist("test").images[3]
    assert np.array_equal(preview["original"][..., 0], expected) and preview["len_keep"] == 12
    assert result["metrics"]["eval_images"] == 32
