"""The generate jobs end to end on the built-in tiny unCLIP, through the real engine thread.

Same seed -> bit-identical images on the CPU, live previews, Stop within a second, PNGs
that carry their parameters, variations, interpolation with its GIF, and the CLI.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.core import Engine
from engine.data import fashion_mnist
from engine.jobs import JobEvent, JobState

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not fashion_mnist.is_available(),
                                reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST")
FAST = {"steps": 10, "prior_steps": 8, "neighbour_pool": 300}


@pytest.fixture(scope="module")
def engine():
    eng = Engine(device="cpu").start()
    eng.wait_ready()
    yield eng
    eng.shutdown()


class Recorder:
    def __init__(self, eng):
        self.events: list[JobEvent] = []
        self.lock = threading.Lock()
        eng.add_listener(self)

    def __call__(self, event):
        if isinstance(event, JobEvent):
            with self.lock:
                self.events.append(event)

    def partials(self, job_id):
        with self.lock:
            return [e.payload for e in self.events if e.job_id == job_id and e.kind == "partial"]


def test_same_seed_same_images_with_previews_insights_and_pngs(engine, tmp_path):
    from engine.generate.gallery import read_params

    rec = Recorder(engine)
    params = {"prompt": "a photo of a sneaker.", "seed": 11, "n": 2, "guidance": 3.0, "preview_every": 2,
              "out_dir": str(tmp_path), **FAST}
    h1 = engine.submit("generate", params)
    a = h1.result(timeout=120)
    b = engine.submit("generate", params).result(timeout=120)
    c = engine.submit("generate", {**params, "seed": 12, "explain": False}).result(timeout=120)
    assert len(a.images) == 2
    for x, y in zip(a.images, b.images):
        assert x.pixels.shape == (28, 28) and x.pixels.dtype == np.uint8
        assert np.array_equal(x.pixels, y.pixels)  # bit-identical
    assert not np.array_equal(a.images[0].pixels, c.images[0].pixels)
    assert np.array_equal(a.images[1].pixels, c.images[0].pixels)  # image i uses seed + i
    # previews: the decoder's estimates while it denoises, and the embedding explained
    previews = [p for p in rec.partials(h1.id) if p.stage == "decoder" and p.step < p.total]
    assert previews and all(p.images.shape == (2, 28, 28) for p in previews)
    ins = a.insights[0]
    assert len(ins.classes) == 10 and abs(float(ins.class_probs.sum()) - 1) < 1e-4
    assert ins.classes[int(ins.class_probs.argmax())] == "Sneaker"  # the prior landed among sneakers
    assert ins.neighbours.shape == (8, 28, 28) and ins.neighbour_labels.count("Sneaker") >= 4
    # the PNG carries what regenerates it
    saved = a.images[1]
    assert Path(saved.path).parent == tmp_path
    p = read_params(saved.path)
    assert p["seed"] == 12 and p["prompt"] == "a photo of a sneaker." and p["steps"] == 10
    assert np.array_equal(np.asarray(Image.open(saved.path)), saved.pixels)
    again = engine.submit("generate", {"prompt": p["prompt"], "seed": p["seed"], "n": 1, "steps": p["steps"],
                                       "guidance": p["guidance"], "prior": p["prior"], "prior_steps": p["prior_steps"],
                                       "save": False, "explain": False}).result(timeout=120)
    assert np.abs(again.images[0].pixels.astype(int) - saved.pixels.astype(int)).max() <= 1


def test_stop_lands_within_a_second_and_saves_nothing(engine, tmp_path):
    rec = Recorder(engine)
    h = engine.submit("generate", {"prompt": "a photo of a dress.", "steps": 1000, "n": 4, "preview_every": 1,
                                   "explain": False, "out_dir": str(tmp_path)})
    deadline = time.monotonic() + 120
    while not [p for p in rec.partials(h.id) if p.stage == "decoder"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert h.state is JobState.RUNNING
    t0 = time.monotonic()
    h.cancel()
    assert h.wait(5)
    assert time.monotonic() - t0 < 1.0
    assert h.state is JobState.CANCELLED
    assert list(tmp_path.glob("*.png")) == []


def test_variations_and_interpolation(engine, tmp_path):
    from engine.generate.quality import load_judge

    test = fashion_mnist.load_fashion_mnist("test")
    boot = int(np.flatnonzero(test.labels == 9)[0])
    src = tmp_path / "boot.png"
    Image.fromarray(test.images[boot]).save(src)
    res = engine.submit("generate", {"image": str(src), "n": 4, "seed": 0, "out_dir": str(tmp_path / "v"),
                                     **FAST}).result(timeout=120)
    assert [i.params["kind"] for i in res.images] == ["variation"] * 4
    assert res.insights[0].classes[int(res.insights[0].class_probs.argmax())] == "Ankle boot"
    pred = load_judge().predict(np.stack([i.pixels for i in res.images]))
    assert (pred == 9).sum() >= 3  # variations of a boot are boots

    gif = tmp_path / "strip.gif"
    out = engine.submit("generate_interpolate", {"a": {"prompt": "a photo of a sneaker."},
                                                 "b": {"image": str(src)}, "frames": 4, "seed": 1,
                                                 "gif_path": str(gif), **FAST}).result(timeout=120)
    assert out.frames.shape == (4, 28, 28)
    tops = [i.classes[int(i.class_probs.argmax())] for i in out.insights]
    assert tops[0] == "Sneaker" and tops[-1] == "Ankle boot"
    with Image.open(gif) as g:
        assert g.n_frames == 6  # 4 frames forth, 2 back
    copied = engine.submit("generate_export_gif", {"source": str(gif), "dest": str(tmp_path / "out" / "x")}).result()
    assert copied.endswith("x.gif") and Path(copied).read_bytes() == gif.read_bytes()


def test_models_list_says_what_is_ready(engine):
    infos = {g.id: g for g in engine.submit("generate_models", {}).result(timeout=60)}
    assert infos["fmnist-unclip-tiny"].ready and set(infos["fmnist-unclip-tiny"].priors) == {"diffusion", "regression"}
    assert not infos["kandinsky-2-2"].ready


def test_cli_generate_writes_pngs_with_parameters(tmp_path):
    out = subprocess.run([sys.executable, "main.py", "generate", "a photo of a bag.", "--seed", "5", "--n", "2",
                          "--steps", "8", "--prior", "regression", "--out", str(tmp_path), "--json", "--device", "cpu"],
                         cwd=REPO, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    images, summary = lines[:-1], lines[-1]
    assert summary["kind"] == "summary" and summary["images"] == 2
    assert [i["seed"] for i in images] == [5, 6]
    from engine.generate.gallery import read_params

    for i in images:
        assert Path(i["path"]).parent == tmp_path and read_params(i["path"])["prior"] == "regression"
    bad = subprocess.run([sys.executable, "main.py", "generate", "--out", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "PROMPT" in bad.stderr
    sized = subprocess.run([sys.executable, "main.py", "generate", "a bag", "--size", "64", "--out", str(tmp_path),
                            "--device", "cpu"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert sized.returncode == 1 and "28×28 images only" in sized.stderr  # the size is Kandinsky's alone
