"""Generation building blocks: DDIM, guidance, slerp, the CLIP loss, the gallery's PNGs, Kandinsky's extra.

Numeric checks on tiny inputs; no trained weights needed.
"""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch

from engine.generate.diffusion import (NoiseSchedule, SamplingCancelled, ddim_sample, ddim_timesteps,
                                       guided, slerp)
from engine.generate.unet import UNet, UNetConfig
from engine.models.lit import clip_loss

SMALL_UNET = UNetConfig(channels=(8, 16), mid_channels=16, cond_dim=12, time_dim=16)


def random_unet(seed: int = 0) -> UNet:
    """A small U-Net with every weight random: the zero-initialised output layers of a fresh
    one would hide the condition, and these tests are about the condition."""
    torch.manual_seed(seed)
    model = UNet(SMALL_UNET).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(std=0.1)
    return model


def a_known_image() -> torch.Tensor:
    """A 1×1×28×28 'image' in [-1, 1]: a bright rectangle on black, like a Fashion-MNIST item."""
    x = -torch.ones(1, 1, 28, 28, dtype=torch.float64)
    x[..., 6:22, 9:19] = 0.8
    return x


# ---------------------------------------------------------------------------- DDIM
@pytest.mark.parametrize("steps", [50, 10, 1])
def test_ddim_recovers_a_known_image_with_the_oracle_noise(steps):
    """Noise-free toy case: with ε predicted perfectly, deterministic DDIM (η = 0) maps
    x_T = sqrt(ᾱ_T)·x_0 + sqrt(1-ᾱ_T)·ε back to x_0, whatever the number of steps."""
    sched = NoiseSchedule.cosine()
    x0 = a_known_image()
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x_T = sched.q_sample(x0, torch.tensor([sched.T - 1]), eps)

    def oracle_eps(x_t, t):
        a = sched.abar(t, x_t)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

    out = ddim_sample(oracle_eps, x_T, sched, steps)
    assert out.dtype == torch.float64
    assert torch.allclose(out, x0, atol=1e-6), float((out - x0).abs().max())
    # and not by accident: the oracle of another image leads to that image instead
    other = -x0

    def other_eps(x_t, t):
        a = sched.abar(t, x_t)
        return (x_t - a.sqrt() * other) / (1 - a).sqrt()

    assert torch.allclose(ddim_sample(other_eps, x_T, sched, steps), other, atol=1e-6)


def test_ddim_with_an_x0_model_and_clipping():
    sched = NoiseSchedule.cosine()
    x0 = a_known_image()
    x_T = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = ddim_sample(lambda x, t: x0 * 3.0, x_T, sched, 8, prediction="x0", clip=1.0)
    assert torch.allclose(out, (3.0 * x0).clamp(-1, 1), atol=1e-9)  # the estimate, clipped to [-1, 1]


def test_timesteps_start_at_pure_noise_and_end_at_zero():
    ts = ddim_timesteps(1000, 50)
    assert ts[0] == 999 and ts[-1] == 0 and len(ts) == 50 and ts == sorted(ts, reverse=True)
    sched = NoiseSchedule.cosine()
    assert sched.alphas_cumprod[-1] < 1e-4 and sched.alphas_cumprod[0] > 0.999


def test_sampler_previews_and_cancel():
    sched = NoiseSchedule.cosine()
    seen = []
    x = torch.zeros(2, 1, 4, 4)
    ddim_sample(lambda x, t: torch.zeros_like(x), x, sched, 20, callback=lambda s: seen.append(s.index),
                preview_every=5)
    assert seen == [5, 10, 15, 20]
    calls = []
    with pytest.raises(SamplingCancelled):
        ddim_sample(lambda x, t: calls.append(1) or torch.zeros_like(x), x, sched, 20,
                    should_stop=lambda: len(calls) >= 3)
    assert len(calls) == 3


def test_same_seed_gives_bit_identical_samples_on_cpu():
    model = random_unet()
    cond = torch.randn(2, 12, generator=torch.Generator().manual_seed(5))

    def sample(seed):
        x_T = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
        with torch.inference_mode():
            return ddim_sample(guided(model, cond, 3.0), x_T, NoiseSchedule.cosine(), 6, clip=1.0)

    a, b, c = sample(7), sample(7), sample(8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


# ---------------------------------------------------------------------------- guidance
def test_guidance_one_is_the_conditional_model():
    model = random_unet()
    x = torch.randn(3, 1, 28, 28)
    t = torch.tensor([10, 500, 990])
    cond = torch.randn(3, 12)
    keep = torch.ones(3, dtype=torch.bool)
    with torch.inference_mode():
        c = model(x, t, cond, keep)
        u = model(x, t, cond, ~keep)
        assert torch.equal(guided(model, cond, 1.0)(x, t), c)
        assert not torch.allclose(c, u)
        assert torch.allclose(guided(model, cond, 0.0)(x, t), u, atol=1e-5)
        assert torch.allclose(guided(model, cond, 3.0)(x, t), u + 3.0 * (c - u), atol=1e-5)
        neg = torch.randn(3, 12)
        n = model(x, t, neg, keep)
        assert torch.allclose(guided(model, cond, 2.0, uncond=neg)(x, t), n + 2.0 * (c - n), atol=1e-5)


def test_dropping_the_condition_uses_the_null_vector():
    model = random_unet()
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([3, 3])
    keep = torch.tensor([False, False])
    with torch.no_grad():
        a = model(x, t, torch.randn(2, 12), keep)
        b = model(x, t, torch.randn(2, 12), keep)
        c = model(x, t, torch.randn(2, 12), ~keep)
    assert torch.equal(a, b)  # whatever embedding was given, it was replaced
    assert not torch.allclose(a, c)


# ---------------------------------------------------------------------------- slerp
def test_slerp_endpoints_equal_the_inputs():
    g = torch.Generator().manual_seed(3)
    a = torch.nn.functional.normalize(torch.randn(128, generator=g), dim=0)
    b = torch.nn.functional.normalize(torch.randn(128, generator=g), dim=0)
    assert torch.equal(slerp(a, b, 0.0), a)
    assert torch.equal(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    assert math.isclose(float(mid.norm()), 1.0, abs_tol=1e-6)  # stays on the sphere
    assert math.isclose(float(mid @ a), float(mid @ b), abs_tol=1e-6)  # halfway by angle
    assert torch.equal(slerp(a, a, 0.3), a) or torch.allclose(slerp(a, a, 0.3), a, atol=1e-7)


# ---------------------------------------------------------------------------- CLIP loss
def test_clip_loss_equals_cross_entropy_on_a_hand_made_matrix():
    """Two pairs; with logit_scale = 0 the logits are the cosine similarities themselves."""
    img = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    txt = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
    # similarity matrix S[i, j] = <img_i, txt_j> = [[0.8, 0.0], [0.96, 0.8]]
    loss, logits = clip_loss(img, txt, torch.tensor(0.0))
    assert torch.allclose(logits, torch.tensor([[0.8, 0.0], [0.96, 0.8]]))
    rows = (-math.log(math.exp(0.8) / (math.exp(0.8) + math.exp(0.0)))
            - math.log(math.exp(0.8) / (math.exp(0.96) + math.exp(0.8)))) / 2
    cols = (-math.log(math.exp(0.8) / (math.exp(0.8) + math.exp(0.96)))
            - math.log(math.exp(0.8) / (math.exp(0.0) + math.exp(0.8)))) / 2
    assert math.isclose(float(loss), (rows + cols) / 2, rel_tol=1e-6)


def test_clip_loss_is_symmetric_and_the_temperature_is_clamped():
    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)
    txt = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)
    scale = torch.tensor(math.log(1 / 0.07))
    l1, _ = clip_loss(img, txt, scale)
    l2, _ = clip_loss(txt, img, scale)
    assert torch.allclose(l1, l2)
    big, logits = clip_loss(img, txt, torch.tensor(10.0))  # exp(10) is clamped to 100
    assert torch.allclose(logits, 100.0 * img @ txt.t(), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- gallery
def test_png_round_trips_its_parameters(tmp_path):
    from engine.generate import gallery

    params = {"prompt": "a photo of a sneaker.", "seed": 12, "steps": 50, "guidance": 3.0,
              "model": "fmnist-unclip-tiny", "prior": "diffusion", "negative_prompt": "",
              "unicode": "pullöver ✓"}
    pixels = (np.arange(28 * 28) % 256).astype(np.uint8).reshape(28, 28)
    path = gallery.save_png(pixels, params, tmp_path)
    assert path.suffix == ".png" and path.parent == tmp_path
    assert gallery.read_params(path) == params
    from PIL import Image

    with Image.open(path) as img:
        assert np.array_equal(np.asarray(img), pixels)  # lossless
        assert img.text["Description"] == params["prompt"]
    # favourites and delete
    other = gallery.save_png(pixels, {**params, "seed": 13}, tmp_path)
    gallery.set_favourite(path, True, tmp_path)
    items = gallery.list_items(tmp_path)
    assert {i.path for i in items} == {str(path), str(other)}
    assert [i.path for i in gallery.list_items(tmp_path, favourites_only=True)] == [str(path)]
    gallery.delete(path, tmp_path)
    assert not path.exists() and gallery.favourites(tmp_path) == set()
    with pytest.raises(gallery.GalleryError):
        gallery.delete(tmp_path.parent / "elsewhere.png", tmp_path)
    plain = tmp_path / "plain.png"
    Image.fromarray(pixels).save(plain)
    with pytest.raises(gallery.GalleryError, match="no Patchwork generation parameters"):
        gallery.read_params(plain)


def test_gif_has_every_frame_forth_and_back(tmp_path):
    from PIL import Image

    from engine.generate.gallery import save_gif

    frames = [np.full((28, 28), v, np.uint8) for v in (0, 80, 160, 240)]
    path = save_gif(frames, tmp_path / "strip.gif", scale=2)
    with Image.open(path) as gif:
        assert gif.size == (56, 56) and gif.n_frames == 6  # 4 + 2 on the way back
        gif.seek(3)
        assert abs(int(np.asarray(gif.convert("L"))[0, 0]) - 240) <= 2


# ---------------------------------------------------------------------------- Kandinsky
@pytest.mark.skipif(importlib.util.find_spec("diffusers") is not None, reason="diffusers is installed")
def test_kandinsky_without_the_extra_says_how_to_install_it():
    from engine.errors import ModelError
    from engine.generate.jobs import generate_job

    with pytest.raises(ModelError) as info:
        next(generate_job(None, prompt="a red bicycle", model="kandinsky-2-2"))
    assert 'pip install -e ".[diffusers]"' in str(info.value)
    assert "Kandinsky 2.2" in str(info.value)
