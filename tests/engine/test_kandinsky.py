"""The Kandinsky 2.2 path end to end on tiny random components (needs the diffusers extra).

Tiny random-initialised prior and decoder are saved in the published hub layout into an
HF cache; the catalogue must call them ready, the app's builder must load them, and the
"generate" job must give exactly what diffusers' pipelines give when called directly,
with live previews, reproducible seeds and a working Stop.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="the optional diffusers extra is not installed")

from engine.core import Engine  # noqa: E402
from engine.jobs import JobEvent, JobState  # noqa: E402
from tests.engine.kandinsky_tiny import load_direct, reference, write_tiny_kandinsky  # noqa: E402

SIZE = 32
FAST = {"model": "kandinsky-2-2", "steps": 6, "prior_steps": 3, "guidance": 4.0, "prior_guidance": 4.0,
        "size": SIZE}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    home = tmp_path_factory.mktemp("hf-home")
    old = {k: os.environ.get(k) for k in ("HF_HOME", "HF_HUB_CACHE")}
    os.environ["HF_HOME"] = str(home)
    os.environ.pop("HF_HUB_CACHE", None)
    saved = write_tiny_kandinsky(home)
    yield {"saved": saved, "direct": load_direct(home)}
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def engine(tiny):
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


def _ref(pipes, prompt, seed, n):
    return reference(*pipes, prompt, seed, n, FAST["steps"], FAST["prior_steps"], FAST["guidance"],
                     FAST["prior_guidance"], SIZE)


def test_published_layout_is_ready_and_loads_through_the_app(tiny):
    """Issue 3: the saved snapshots are 'ready' and the app's loader gives the reference outputs."""
    import torch
    from diffusers import KandinskyV22Pipeline, KandinskyV22PriorPipeline

    from engine import catalogue
    from engine.catalogue.load import build_model
    from engine.catalogue.locate import READY, state_of
    from engine.generate.jobs import models_job

    for model_id in ("kandinsky-2-2-prior", "kandinsky-2-2-decoder"):
        st = state_of(catalogue.get(model_id))
        assert st.state == READY, st
        assert os.path.isfile(os.path.join(st.path, "model_index.json"))
    info = {g.id: g for g in models_job(None)}["kandinsky-2-2"]
    assert info.ready, info.detail
    prior = build_model(catalogue.get("kandinsky-2-2-prior")).pipeline
    decoder = build_model(catalogue.get("kandinsky-2-2-decoder")).pipeline
    assert isinstance(prior, KandinskyV22PriorPipeline) and isinstance(decoder, KandinskyV22Pipeline)
    # each stage of the loaded pipelines against the in-memory components that were saved
    # (chained end to end, random weights amplify float noise of ~1e-7 many times over)
    ref_prior, ref_decoder = tiny["saved"]
    kw = {"num_images_per_prompt": 2, "num_inference_steps": FAST["prior_steps"],
          "guidance_scale": FAST["prior_guidance"]}
    want = ref_prior("a red shoe", generator=torch.Generator().manual_seed(5), **kw)
    got = prior("a red shoe", generator=torch.Generator().manual_seed(5), **kw)
    for name in ("image_embeds", "negative_image_embeds"):
        assert (getattr(got, name) - getattr(want, name)).abs().max() < 1e-5
    kw = {"image_embeds": want.image_embeds, "negative_image_embeds": want.negative_image_embeds, "height": SIZE,
          "width": SIZE, "num_inference_steps": FAST["steps"], "guidance_scale": FAST["guidance"],
          "output_type": "np"}
    want = ref_decoder(generator=torch.Generator().manual_seed(5), **kw).images
    got = decoder(generator=torch.Generator().manual_seed(5), **kw).images
    assert got.shape == (2, SIZE, SIZE, 3) and want.std() > 0.05  # not a blank image
    assert np.abs(got - want).max() < 1e-5


def test_generate_job_matches_diffusers_with_previews_and_seeds(engine, tiny, tmp_path):
    from engine.generate.gallery import read_params

    rec = Recorder(engine)
    params = {**FAST, "prompt": "a red shoe", "seed": 7, "n": 2, "preview_every": 2, "out_dir": str(tmp_path)}
    h = engine.submit("generate", params)
    a = h.result(timeout=60)
    b = engine.submit("generate", {**params, "save": False}).result(timeout=60)
    c = engine.submit("generate", {**params, "seed": 8, "save": False}).result(timeout=60)
    assert len(a.images) == 2
    for x, y in zip(a.images, b.images):
        assert x.pixels.shape == (SIZE, SIZE, 3) and x.pixels.dtype == np.uint8
        assert np.array_equal(x.pixels, y.pixels)  # same seed: bit-identical
    assert not np.array_equal(a.images[0].pixels, c.images[0].pixels)
    # our wrapper gives exactly what diffusers gives when called directly
    want = (np.clip(_ref(tiny["direct"], "a red shoe", 7, 2), 0, 1) * 255).round().astype(np.uint8)
    assert np.array_equal(np.stack([im.pixels for im in a.images]), want)
    # live previews through MoVQ at steps 2 and 4 of 6
    previews = [p for p in rec.partials(h.id) if p.stage == "decoder"]
    assert [p.step for p in previews] == [2, 4]
    assert all(p.images.shape == (2, SIZE, SIZE, 3) and p.images.dtype == np.uint8 for p in previews)
    # image i carries seed + i; that seed with n = 1 gives it again
    p = read_params(a.images[1].path)
    assert p["seed"] == 8 and p["model"] == "kandinsky-2-2" and p["width"] == p["height"] == SIZE
    assert np.abs(c.images[0].pixels.astype(int) - a.images[1].pixels.astype(int)).max() <= 1


def test_variation_of_an_image(engine, tmp_path):
    from PIL import Image

    path = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
    r = engine.submit("generate", {**FAST, "image": str(path), "n": 2, "save": False}).result(timeout=60)
    assert [im.pixels.shape for im in r.images] == [(SIZE, SIZE, 3)] * 2
    assert r.params["kind"] == "variation"


def test_stop_ends_the_diffusers_call(engine, tmp_path):
    from engine.errors import JobFailed

    with pytest.raises(JobFailed, match="multiple of 8"):
        engine.submit("generate", {**FAST, "prompt": "a coat", "size": 36, "save": False}).result(timeout=60)
    with pytest.raises(JobFailed, match="at most 999"):  # the scheduler's own limit, said clearly
        engine.submit("generate", {**FAST, "prompt": "a coat", "steps": 1000, "save": False}).result(timeout=60)
    rec = Recorder(engine)
    h = engine.submit("generate", {**FAST, "prompt": "a coat", "steps": 999, "n": 1, "preview_every": 1,
                                   "out_dir": str(tmp_path)})
    deadline = time.monotonic() + 60
    while not rec.partials(h.id) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert h.state is JobState.RUNNING
    t0 = time.monotonic()
    h.cancel()
    assert h.wait(5)
    assert time.monotonic() - t0 < 1.0
    assert h.state is JobState.CANCELLED
    assert list(tmp_path.glob("*.png")) == []
    # the engine is free again: the next job runs
    r = engine.submit("generate", {**FAST, "prompt": "a coat", "n": 1, "save": False}).result(timeout=60)
    assert r.images[0].pixels.shape == (SIZE, SIZE, 3)
