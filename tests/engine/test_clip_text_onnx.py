"""CLIP text towers through ONNX Runtime: the torch-free tokenizer gives open_clip's tokens, the
exported tower gives PyTorch's vectors (cosine >= 0.9999), and a query process using it never
imports torch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="pip install onnxruntime (a dependency of Patchwork)")
open_clip = pytest.importorskip("open_clip")

import torch  # noqa: E402

from engine.runtime import clip_text_onnx  # noqa: E402
from engine.runtime.clip_tokenizer import ClipTokenizer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["a photo of a cat", "A DOG&amp;a   ball!!", "naïve café, 2 crème brûlées", "一杯咖啡", "it's o'clock",
         "", "word " * 100, "don't-stop 3.14159 #hashtag @user <start_of_text>",
         "line\r\nbreaks\tand\x00control\x1bchars\x7f", "&amp;amp;amp; <b>bold</b> &lt;3", "ﬁne ｗｉｄｅ “quoted”",
         "mojibake: cafÃ©"]


def test_tokens_match_open_clip():
    want = open_clip.tokenizer.SimpleTokenizer()(TEXTS).numpy()
    got = ClipTokenizer()(TEXTS)
    np.testing.assert_array_equal(got, want)


def tiny_clip():
    torch.manual_seed(0)
    return open_clip.model.CLIP(embed_dim=16, vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=1,
                                                              head_width=32),
                                text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2,
                                              layers=2)).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    weights = tmp_path_factory.mktemp("w") / "w.bin"
    weights.write_bytes(os.urandom(64))
    model = tiny_clip()
    path = clip_text_onnx.export_text(model, open_clip.tokenizer.SimpleTokenizer(),
                                      clip_text_onnx.export_path("tiny-clip", weights))
    return model, path


def test_text_tower_matches_pytorch(exported):
    model, path = exported
    assert path is not None and clip_text_onnx.ready(path)
    with torch.no_grad():
        want = torch.nn.functional.normalize(
            model.encode_text(open_clip.tokenizer.SimpleTokenizer()(TEXTS)), dim=-1).numpy()
    got = clip_text_onnx.ClipTextOnnx(path).encode(TEXTS)
    assert got.shape == want.shape == (len(TEXTS), 16)
    assert float((want * got).sum(1).min()) >= 0.9999


def test_other_tokenizers_are_not_exported(tmp_path):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"x")
    canon = open_clip.tokenizer.SimpleTokenizer(clean="canonicalize")
    assert clip_text_onnx.export_text(tiny_clip(), canon, clip_text_onnx.export_path("t", weights)) is None


def test_query_process_never_imports_torch(exported):
    _, path = exported
    code = ("import sys; from pathlib import Path; from engine.runtime.clip_text_onnx import ClipTextOnnx; "
            f"v = ClipTextOnnx(Path({str(path)!r})).encode(['a cat']); assert v.shape == (1, 16); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
