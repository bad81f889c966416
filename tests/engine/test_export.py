"""ONNX export of runs trained here: every exportable family is checked with onnxruntime
against PyTorch, the sidecar says what a program needs, a failed check leaves no file, and the
Train panel's "Test your model" gives the same answer from the run and from its export."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import ExportError
from engine.export import onnx_file
from engine.export.jobs import export_job
from engine.export.onnx_file import sha256_of
from engine.export.towers import MAEEncoder, fold_head_norm
from engine.export.try_model import onnx_predict, try_model_job
from engine.models.cache import ModelCache
from engine.train.jobs import train_job
from tests.engine.training import drive, one_thread, write_shapes  # noqa: F401  (one_thread: autouse)

REPO = Path(__file__).resolve().parents[2]
TINY_VIT = {"embed_dim": 16, "depth": 1, "num_heads": 2, "patch_size": 4, "batch_size": 8, "image_size": 16,
            "grayscale": True, "max_steps": 2}


class Ctx:
    device = "cpu"
    models = ModelCache(1000)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> str:
    return write_shapes(tmp_path_factory.mktemp("export-shapes"), per_class=6, seed=3)


@pytest.fixture(scope="module")
def vit_run(shapes) -> str:
    result = drive(train_job(Ctx(), "supervised", shapes, TINY_VIT, run_name="export-vit"))[0]
    assert result["status"] == "finished"
    return result["run_dir"]


def export(run: str, dest: Path, **kw):
    return drive(export_job(Ctx(), run, str(dest), **kw))[0]


def test_a_vit_classifier_exports_with_a_sidecar_and_the_graph_matches_pytorch(vit_run, shapes, tmp_path):
    from engine import catalogue
    from engine.catalogue.load import build_model
    from engine.images import open_image
    from engine.preprocess import to_input

    res = export("export-vit", tmp_path / "vit.onnx")
    assert res.family == "classifier" and res.files == (str(tmp_path / "vit.onnx"),)
    assert res.max_abs_diff <= onnx_file.TOLERANCE
    meta = json.loads((tmp_path / "vit.json").read_text())
    assert meta["labels"] == ["bars", "checks", "stripes"] and meta["preprocess"]["input_size"] == 16
    assert meta["weights_sha256"] == sha256_of(Path(vit_run) / "model.safetensors")
    assert meta["onnx_sha256"]["vit.onnx"] == sha256_of(tmp_path / "vit.onnx")
    assert meta["check"]["passed"] and meta["check"]["parts"][0]["samples"] == 4
    assert meta["inputs"]["vit.onnx"][0] == {"name": "images", "dtype": "float32", "shape": [-1, 1, 16, 16]}

    # Independently of the check: real images through onnxruntime and through the catalogue model.
    import onnxruntime as ort

    entry = catalogue.get("run-export-vit")
    images = sorted(Path(shapes).glob("*/*.png"))[::5]
    x = np.stack([to_input(open_image(str(p)), entry.preprocess) for p in images])
    (got,) = ort.InferenceSession(str(tmp_path / "vit.onnx")).run(None, {"images": x})
    with torch.no_grad():
        want = build_model(entry)(torch.from_numpy(x)).numpy()
    assert got.shape == (len(images), 3) and np.abs(got - want).max() <= 1e-4

    # "Test your model": the run (with its attention rollout) and its export agree.
    path = str(images[0])
    from_run = drive(try_model_job(Ctx(), path, model_id="run-export-vit"))[0]
    from_onnx = onnx_predict(path, str(tmp_path / "vit.onnx"))
    assert from_run.source == "run" and from_run.overlay is not None and from_run.overlay.shape == from_run.image.shape
    assert [p.index for p in from_run.top] == [p.index for p in from_onnx.top]
    assert abs(from_run.top[0].prob - from_onnx.top[0].prob) < 1e-4
    assert from_onnx.overlay is None and from_onnx.image.shape[0] >= 224


def test_mae_encoder_graph_is_the_unmasked_encoder_in_patch_order(shapes, tmp_path):
    result = drive(train_job(Ctx(), "mae", shapes, {"max_steps": 2, "batch_size": 8}, run_name="export-mae"))[0]
    from engine.models.mae import MaskedAutoencoderViT

    mae = MaskedAutoencoderViT(img_size=16, patch_size=4, in_chans=1, embed_dim=16, depth=1, num_heads=2,
                               decoder_embed_dim=8, decoder_depth=1, decoder_num_heads=1).eval()
    x = torch.randn(2, 1, 16, 16)
    identity = torch.arange(16, dtype=torch.float32).expand(2, -1)  # noise in order: no shuffle
    with torch.no_grad():
        latent = mae.forward_encoder(x, 0.0, noise=identity)[0]
        assert torch.allclose(MAEEncoder(mae)(x), latent, atol=1e-6)

    res = export(result["run_dir"], tmp_path / "mae.onnx")
    meta = json.loads((tmp_path / "mae.json").read_text())
    assert res.family == "mae" and meta["outputs"]["mae.onnx"][0]["name"] == "latent" and meta["labels"] is None
    with pytest.raises(ExportError, match="embeddings, not classes"):
        onnx_predict(str(next(Path(shapes).glob("bars/*.png"))), str(tmp_path / "mae.onnx"))


def test_probe_head_norm_folds_into_one_linear_and_exports(shapes, tmp_path):
    from engine.train.features import ProbeClassifier

    class Flat(torch.nn.Module):
        num_features = 6

        def forward(self, x):
            return x.flatten(1)

    probe = ProbeClassifier(Flat(), 3, head_bn=True)
    with torch.no_grad():
        probe.head[0].running_mean.uniform_(-1, 1)
        probe.head[0].running_var.uniform_(0.5, 2)
    probe.eval()
    x = torch.randn(5, 6)
    folded = fold_head_norm(probe)
    assert len(folded.head) == 1 and len(probe.head) == 2  # the original is untouched
    assert torch.allclose(folded(x), probe(x), atol=1e-5)

    result = drive(train_job(Ctx(), "linear_probe", shapes, {"max_steps": 2, "batch_size": 8},
                             run_name="export-probe"))[0]
    res = export(result["run_dir"], tmp_path / "probe.onnx")
    assert res.max_abs_diff <= onnx_file.TOLERANCE


def test_a_lit_exports_both_towers_and_the_text_graph_runs_with_the_tokenizer_file(shapes, tmp_path):
    from tokenizers import Tokenizer

    folder = tmp_path / "pairs"
    shutil.copytree(shapes, folder)
    for p in folder.glob("*/*.png"):
        p.with_suffix(".txt").write_text(f"a picture of {p.parent.name}")
    result = drive(train_job(Ctx(), "lit", str(folder), {"max_steps": 2, "batch_size": 8, "eval_every": 0,
                                                         "image_size": 16}, run_name="export-lit"))[0]
    res = export(result["run_dir"], tmp_path / "lit.onnx")
    names = sorted(Path(f).name for f in res.files)
    assert names == ["lit.image.onnx", "lit.text.onnx"] and len(res.checks) == 2
    meta = json.loads((tmp_path / "lit.json").read_text())
    assert meta["files"]["tokenizer"] == "lit.tokenizer.json"

    import onnxruntime as ort

    from engine.models.lit import load_lit

    tok = Tokenizer.from_file(str(tmp_path / "lit.tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(["a picture of bars", "a picture of checks"])
    feeds = {"input_ids": np.array([e.ids for e in enc], np.int64),
             "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
             "token_type_ids": np.array([e.type_ids for e in enc], np.int64)}
    (got,) = ort.InferenceSession(str(tmp_path / "lit.text.onnx")).run(None, feeds)
    with torch.no_grad():
        want = load_lit(Path(result["run_dir"]) / "model.safetensors").encode_text(
            ["a picture of bars", "a picture of checks"]).numpy()
    assert np.abs(got - want).max() <= 1e-4


def test_a_failed_check_writes_nothing_and_says_by_how_much(vit_run, tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_file, "TOLERANCE", -1.0)  # no graph can be that close
    with pytest.raises(ExportError, match=r"vit\.onnx: onnxruntime differs from PyTorch by .* nothing was written"):
        export("export-vit", tmp_path / "vit.onnx")
    assert list(tmp_path.iterdir()) == []


def test_bad_requests_get_one_line_that_names_the_input(vit_run, tmp_path):
    with pytest.raises(ExportError, match="should end in .onnx"):
        export("export-vit", tmp_path / "vit.pt")
    with pytest.raises(ExportError, match="does not exist"):
        export("export-vit", tmp_path / "nowhere" / "vit.onnx")
    with pytest.raises(ExportError, match="--opset 9"):
        export("export-vit", tmp_path / "vit.onnx", opset=9)
    with pytest.raises(Exception, match="no training run 'no-such-run'"):
        export("no-such-run", tmp_path / "vit.onnx")
    with pytest.raises(ExportError, match="no vit.json beside it"):
        onnx_predict(str(REPO / "resources" / "labels" / "fashion_mnist.txt"), str(tmp_path / "vit.onnx"))


def test_cli_exports_and_reports_the_check(vit_run, tmp_path):
    import os

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(REPO / "main.py"), "--device", "cpu", "export", vit_run, "--onnx",
                          str(tmp_path / "m.onnx")], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "m.onnx: logits, onnxruntime vs PyTorch max abs difference" in out.stdout and "sidecar" in out.stdout
    bad = subprocess.run([sys.executable, str(REPO / "main.py"), "export", "no-such-run", "--onnx",
                          str(tmp_path / "x.onnx")], capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no training run" in bad.stderr
