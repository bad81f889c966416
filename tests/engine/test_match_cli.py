"""`python main.py match IMAGE CAPTION...`: the Match panel's job headless, on the built-in ALBEF."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from engine.data import captions as fm_captions
from engine.data import fashion_mnist
from main import main

needs_fmnist = pytest.mark.skipif(not fashion_mnist.is_available(), reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> str:
    """A 28×28 grey bar on black: no dataset needed."""
    img = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(img).rectangle([8, 4, 20, 24], fill=200)
    path = tmp_path_factory.mktemp("match") / "bar.png"
    img.save(path)
    return str(path)


def test_table_best_first_and_word_maps(drawn, tmp_path, capsys):
    captions = ["a photo of a trouser.", "a photo of a bag.", "a photo of a sneaker."]
    assert main(["match", drawn, *captions, "--word-maps", str(tmp_path / "maps"), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{drawn}: fmnist-albef-tiny") and "caption" in lines[1]
    rows = lines[2:5]
    assert sorted(r.split("%  ", 2)[-1].split("  ")[-1] for r in rows) == sorted(captions)
    itm = [float(r.split("%")[0]) for r in rows]
    assert itm == sorted(itm, reverse=True)
    files = sorted(p.name for p in (tmp_path / "maps").iterdir())
    # one overlay per word ("a", "photo", "of", "a", noun, ".") and one for the whole caption
    assert len(files) == 3 * 7 and "c01-caption.png" in files and "c01-w05-trouser.png" in files
    assert lines[-1] == f"  wrote 21 PNGs to {tmp_path / 'maps'}"
    assert Image.open(tmp_path / "maps" / "c02-w05-bag.png").size == (196, 196)


@needs_fmnist
def test_json_ranks_the_true_caption_first(capsys):
    from engine.data.samples import fashion_mnist_samples

    sandal = fashion_mnist_samples(10)[5][0]
    prompts = [fm_captions.prompts(c)[0] for c in range(10)]
    assert main(["match", sandal, *prompts, "--json", "--device", "cpu"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["model"] == "fmnist-albef-tiny" and record["grid"] == [4, 4] and record["layer"] == 1
    rows = record["captions"]
    assert [r["index"] for r in rows][0] == 6 and rows[0]["text"] == prompts[5]
    assert sorted(r["index"] for r in rows) == list(range(1, 11))
    itm = [r["itm_probability"] for r in rows]
    assert itm == sorted(itm, reverse=True) and all(0.0 <= p <= 1.0 for p in itm)
    assert int(np.argmax([r["itc_similarity"] for r in rows])) == 0  # the unimodal embeddings agree
    assert sum(r["itc_probability"] for r in rows) == pytest.approx(1.0, abs=1e-4)
    assert rows[0]["words"][:3] == ["a", "photo", "of"] and rows[0]["word_maps"] == []


def test_corrupt_image_is_a_clean_failure(tmp_path, capsys):
    bad = tmp_path / "bag.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"truncated")
    assert main(["match", str(bad), "a photo of a bag.", "--device", "cpu"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {bad}: corrupt image data")


def test_usage_and_model_errors(drawn, capsys):
    assert main(["match", drawn, " ", ""]) == 2  # before the engine starts
    assert "at least one non-empty caption" in capsys.readouterr().err
    assert main(["match", drawn, *["a bag"] * 33]) == 2
    assert "at most 32 captions" in capsys.readouterr().err
    assert main(["match", drawn, "a bag", "--model", "fmnist-mae-tiny", "--device", "cpu"]) == 1
    assert "not an image-text fusion (ALBEF) model" in capsys.readouterr().err
