"""Attention maps: the maths on hand-made matrices, the capturing path against the fused
one on real library models, the patch grids, and one real-weights check offline."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from engine.attention import maths
from engine.attention.adapters import adapt
from engine.attention.capture import capturing
from engine.attention.compute import capture, gradients

FUSED_TOL = 1e-5  # the bar: captured vs fused logits, float32
MEASURED: dict[str, float] = {}


def coffee() -> str:
    import skimage

    return os.path.join(os.path.dirname(skimage.__file__), "data", "coffee.png")


@pytest.fixture(autouse=True)
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def timm_vit_tiny():
    import timm

    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10).eval()


def torchvision_vit():
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    return VisionTransformer(image_size=32, patch_size=8, num_layers=3, num_heads=4, hidden_dim=64, mlp_dim=128,
                             num_classes=10).eval()


def open_clip_visual():
    from open_clip.transformer import VisionTransformer

    torch.manual_seed(0)
    return VisionTransformer(image_size=32, patch_size=8, width=64, layers=3, heads=4, mlp_ratio=2.0,
                             output_dim=16).eval()


def builtin_vit():
    from engine import catalogue
    from engine.catalogue.load import build_model

    return build_model(catalogue.get("fmnist-vit-tiny"))


REAL_FMNIST = ("needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, "
               "or the Train panel's Get Fashion-MNIST")


def fashion_mnist_input(index: int = 0, real: bool = True) -> torch.Tensor:
    """A Fashion-MNIST test image, preprocessed as the built-in ViT's catalogue entry says.
    real=False: a synthetic image in the same format where the real dataset is absent."""
    from engine.data.fashion_mnist import MEAN, STD, is_available, load_fashion_mnist
    from tests.idx_files import synthetic_images

    if is_available():
        image = load_fashion_mnist("test").images[index]
    elif real:
        pytest.skip(REAL_FMNIST)
    else:
        image = synthetic_images(index + 1, seed=0)[0][index]
    x = torch.from_numpy(image.astype(np.float32) / 255.0)
    return ((x - MEAN) / STD)[None, None]  # (1, 1, 28, 28)


# ---------------------------------------------------------------------------- the maths, by hand
def test_rollout_equals_the_published_formula_on_hand_made_matrices():
    # two layers, one head, two tokens; Â = 0.5·A + 0.5·I, R = Â_2 · Â_1 (Abnar & Zuidema 2020)
    a1 = np.array([[[0.5, 0.5], [0.0, 1.0]]])
    a2 = np.array([[[1.0, 0.0], [0.5, 0.5]]])
    # by hand: Â1 = [[.75, .25], [0, 1]], Â2 = [[1, 0], [.25, .75]]
    expected = np.array([[0.75, 0.25], [0.1875, 0.8125]])
    np.testing.assert_allclose(maths.rollout([a1, a2]), expected, atol=1e-12)
    # the order matters: the first layer is applied first
    assert not np.allclose(maths.rollout([a2, a1]), expected)


def test_rollout_formula_with_heads_fusion_and_discard():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 2, 4, 4))  # (L, H, N, N)
    attns = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    eye = np.eye(4)
    expected = eye
    for a in attns:  # the formula written out independently
        fused = a.mean(0)
        hat = 0.5 * fused + 0.5 * eye
        hat = hat / hat.sum(-1, keepdims=True)
        expected = hat @ expected
    got = maths.rollout(attns, discard_ratio=0.0, fusion="mean")
    np.testing.assert_allclose(got, expected, atol=1e-12)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-12)  # rollout rows stay distributions
    np.testing.assert_allclose(maths.fuse_heads(attns[0], "max"), attns[0].max(0))
    np.testing.assert_allclose(maths.fuse_heads(attns[0], "min"), attns[0].min(0))

    # discard: the lowest half of each fused matrix is zeroed ([0, 0] kept), rows renormalised
    a = np.array([[0.01, 0.6, 0.39], [0.5, 0.2, 0.3], [0.1, 0.1, 0.8]])
    dropped = maths.discard_lowest(a, 0.5)  # 4 lowest of 9: 0.01 (kept: it is [0, 0]), 0.1, 0.1, 0.2
    np.testing.assert_allclose(dropped, [[0.01, 0.6, 0.39], [0.5, 0.0, 0.3], [0.0, 0.0, 0.8]])
    r = maths.rollout([a[None]], discard_ratio=0.5)
    hat = 0.5 * dropped + 0.5 * np.eye(3)
    np.testing.assert_allclose(r, hat / hat.sum(-1, keepdims=True), atol=1e-12)


def test_grad_rollout_and_cams_by_hand():
    # one layer, two heads, two tokens: Ā = mean_h (∇A ⊙ A)⁺, R = I + Ā
    attn = np.array([[[0.5, 0.5], [0.2, 0.8]], [[1.0, 0.0], [0.4, 0.6]]])
    grad = np.array([[[1.0, -1.0], [2.0, 0.0]], [[0.5, 3.0], [-1.0, 1.0]]])
    a_bar = np.array([[(0.5 + 0.5) / 2, (0 + 0) / 2], [(0.4 + 0) / 2, (0 + 0.6) / 2]])
    np.testing.assert_allclose(maths.grad_rollout([attn], [grad]), np.eye(2) + a_bar, atol=1e-12)

    acts = np.zeros((2, 2, 3))  # (h, w, C)
    acts[0, 1] = [1.0, 2.0, 0.0]
    acts[1, 0] = [0.0, 0.0, 5.0]
    grads = np.zeros((2, 2, 3))
    grads[..., 0] = 4.0  # channel weights = spatial mean of the gradient: (4, 0, -4)
    grads[..., 2] = -4.0
    np.testing.assert_allclose(maths.grad_cam(acts, grads), [[0.0, 4.0], [0.0, 0.0]])  # ReLU drops -20

    flat = np.zeros((3, 3, 2))
    flat[1, 2] = [3.0, 4.0]  # one strong position: EigenCAM must light it up, not invert
    cam = maths.eigen_cam(flat)
    assert np.unravel_index(cam.argmax(), cam.shape) == (1, 2)


def test_token_row_map_drops_prefix_and_is_row_major():
    m = np.arange(7 * 7, dtype=float).reshape(7, 7)  # N = 1 + 2·3
    out = maths.token_row_map(m, (2, 3), prefix=1)
    np.testing.assert_array_equal(out, [[1, 2, 3], [4, 5, 6]])  # [CLS] row, [CLS] column dropped
    np.testing.assert_array_equal(maths.token_row_map(m, (2, 3), prefix=1, query=3), [[22, 23, 24], [25, 26, 27]])


# ---------------------------------------------------------------------------- the capturing path
@pytest.mark.parametrize("make,shape", [
    (timm_vit_tiny, (1, 3, 224, 224)),
    (torchvision_vit, (1, 3, 32, 32)),
    (open_clip_visual, (1, 3, 32, 32)),
    (builtin_vit, None),
])
def test_captured_logits_equal_fused_logits_and_rows_sum_to_one(make, shape):
    model = make()
    adapter = adapt(model)
    torch.manual_seed(1)
    x = fashion_mnist_input(real=False) if shape is None else torch.randn(shape)
    mods = adapter.attention_modules()
    if adapter.spec.kind == "timm-vit":
        assert all(m.fused_attn for m in mods), "plain classification must keep timm's fused SDPA"
    with torch.no_grad():
        fused = adapter.scores(x)
        with capturing(mods) as rec:
            captured = adapter.scores(x)
        again = adapter.scores(x)
    diff = float((fused - captured).abs().max())
    MEASURED[make.__name__] = diff
    print(f"{make.__name__}: max |fused - captured| = {diff:.3g}")
    assert diff <= FUSED_TOL
    assert torch.equal(fused, again)  # the modules are back to their own forward
    assert all("forward" not in m.__dict__ for m in mods)
    assert len(rec.attn) == adapter.spec.depth
    n = adapter.spec.num_tokens
    for a in rec.attn:
        assert a.shape == (1, adapter.spec.num_heads, n, n)
        torch.testing.assert_close(a.sum(-1), torch.ones(a.shape[:-1]), atol=1e-5, rtol=0)  # every row sums to 1
        assert (a >= 0).all()


def test_builtin_vit_predicts_real_fashion_mnist_and_its_maps_are_4x4():
    from engine.data.fashion_mnist import is_available, load_fashion_mnist

    if not is_available():
        pytest.skip(REAL_FMNIST)

    model = builtin_vit()
    adapter = adapt(model, 28)
    labels = load_fashion_mnist("test").labels
    hits = 0
    for i in range(8):
        cap = capture(adapter, fashion_mnist_input(i))
        hits += int(cap.scores.argmax() == labels[i])
        assert cap.attn.shape == (6, 4, 17, 17) and cap.acts.shape == (6, 4, 4, 128)
    assert hits >= 6  # an 88.5% model on real test images


def test_grad_cam_uses_the_patch_grid_14x14_for_224_16_and_7x7_for_28_4():
    from engine.models.vit import build_vit, vit_config

    torch.manual_seed(0)
    small = build_vit(vit_config("tiny", img_size=28, in_chans=1, num_classes=10, patch_size=4, depth=2)).eval()
    for model, x, grid in [(timm_vit_tiny(), torch.randn(1, 3, 224, 224), (14, 14)),
                           (small, torch.randn(1, 1, 28, 28), (7, 7))]:
        adapter = adapt(model)
        assert adapter.spec.grid == grid
        cap = capture(adapter, x)
        _, act_g = gradients(adapter, x, lambda s: s[0, 3])
        cam = maths.grad_cam(cap.acts[-1], act_g[-1])
        assert cam.shape == grid
        assert cam.max() > 0  # the gradient reaches the patch tokens: the right layer ([CLS] dropped)
        # the layer after the last block would be the wrong one: its patch outputs never reach [CLS]
        with torch.enable_grad():
            out = model.forward_features(x.requires_grad_(True))
            (g,) = torch.autograd.grad(model.forward_head(out)[0, 3], [out])
        assert float(g[0, model.num_prefix_tokens:].abs().max()) == 0.0


def test_patch_tokens_reshape_row_major_without_cls():
    """A single bright patch at (row 2, col 5) must come back at (2, 5) of the 14×14 grid."""
    model = timm_vit_tiny()
    with torch.no_grad():
        model.pos_embed.zero_()  # so every other patch token is identical
    x = torch.zeros(1, 3, 224, 224)
    x[:, :, 2 * 16:3 * 16, 5 * 16:6 * 16] = 3.0
    cap = capture(adapt(model), x)
    first = cap.acts[0]  # (14, 14, D): tokens entering block 1
    dist = np.linalg.norm(first - first[0, 0], axis=-1)
    assert np.unravel_index(dist.argmax(), dist.shape) == (2, 5)
    assert (dist > 1e-4).sum() == 1


def test_token_view_spells_out_vit_b16():
    import timm
    from torchvision.models import vit_b_16

    from engine.attention.tokens import token_view

    expected = "224×224×3 → 196 patches of 16×16×3=768 → +[CLS] = 197×768 → 12 heads × 64 → 197×768 per block"
    with torch.device("meta"):
        tv = vit_b_16()
        tm = timm.create_model("vit_base_patch16_224", pretrained=False)
    for model in (tv, tm):
        assert token_view(adapt(model).spec).splitlines()[0] == expected
    tiny = token_view(adapt(builtin_vit()).spec).splitlines()[0]
    assert tiny == "28×28×1 → 16 patches of 7×7×1=49 → linear 49→128 → +[CLS] = 17×128 → 4 heads × 32 → 17×128 per block"


def test_mae_encoder_maps_keep_patch_order():
    from engine.models.mae import MaskedAutoencoderViT

    torch.manual_seed(0)
    model = MaskedAutoencoderViT(img_size=28, patch_size=4, in_chans=1, embed_dim=32, depth=2, num_heads=2,
                                 decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2).eval()
    adapter = adapt(model)
    x = torch.randn(1, 1, 28, 28)
    cap = capture(adapter, x)
    assert cap.attn.shape == (2, 2, 50, 50) and cap.acts.shape == (2, 7, 7, 32)
    with torch.no_grad():  # tokens entering block 1 = norm1(patches + position), in patch order
        tokens = model.blocks[0].norm1(model.patch_embed(x) + model.pos_embed[:, 1:])  # (1, 49, 32)
    np.testing.assert_allclose(cap.acts[0].reshape(49, 32), tokens[0].numpy(), atol=1e-5)


# ---------------------------------------------------------------------------- the job, through the engine
@pytest.fixture(scope="module")
def engine():
    from engine.core import Engine

    eng = Engine(device="cpu").start()
    eng.wait_ready()
    yield eng
    eng.shutdown()


def test_espresso_grad_cam_on_efficientnet_lite0_lies_on_the_cup(engine):
    from engine.attention.overlay import upsample

    res = engine.submit("attention", {"path": coffee(), "model_id": "efficientnet-lite0", "method": "gradcam",
                                      "class_index": 967}).result(timeout=120)
    assert res.class_label == "espresso" and res.top[0].label == "espresso"
    assert res.grid == (7, 7)
    # The cup (white rim, coffee, body and handle; not the saucer or the spoon) in the 600×400
    # photo, read off the image: x 165..420, y 10..305. The model sees the centre crop x 125..475, y 25..375.
    left, top, right, bottom = res.crop_box
    assert (round(left), round(top), round(right), round(bottom)) == (125, 25, 475, 375)
    w, h = round(right - left), round(bottom - top)
    cam = upsample(res.maps[0].values, (w, h))  # (350, 350) over the crop, in photo pixels
    ys, xs = np.mgrid[0:h, 0:w]
    inside = (xs + left >= 165) & (xs + left <= 420) & (ys + top >= 10) & (ys + top <= 305)
    fraction = float(cam[inside].sum() / cam.sum())
    MEASURED["espresso_in_box"] = fraction
    print(f"espresso Grad-CAM mass inside the cup box: {fraction:.3f} (box covers {inside.mean():.3f} of the crop)")
    assert fraction > 0.75
    assert fraction > 1.25 * inside.mean()  # far more than a flat map would put there


def test_attention_job_on_the_builtin_vit(engine, tmp_path):
    from PIL import Image

    from engine.attention import AttentionError
    from engine.data.fashion_mnist import is_available, load_fashion_mnist
    from engine.errors import JobFailed

    if not is_available():
        pytest.skip(REAL_FMNIST)
    test = load_fashion_mnist("test")
    path = tmp_path / "boot.png"
    index = int((test.labels == 9).argmax())  # an ankle boot
    Image.fromarray(test.images[index]).save(path)

    def run(**kw):
        return engine.submit("attention", {"path": str(path), "model_id": "fmnist-vit-tiny", **kw}).result(timeout=60)

    raw = run(method="raw", all_heads=True, layer=2)
    assert raw.top[0].label == "Ankle boot"
    assert len(raw.maps) == 4 and all(m.values.shape == (4, 4) for m in raw.maps)
    assert raw.image.shape == (224, 224, 3)  # 28 px shown 8× with whole pixels
    clicked = run(method="raw", query=(1, 2), head=1)
    assert clicked.query == 1 * 4 + 2 and clicked.head == 1 and "head 2" in clicked.maps[0].title
    assert not np.allclose(clicked.maps[0].values, run(method="raw", head=1).maps[0].values)
    roll = run(method="rollout", discard_ratio=0.5, fusion="max")
    assert roll.layer is None and roll.maps[0].values.max() == pytest.approx(1.0)
    grad = run(method="gradrollout", class_index=9)
    assert grad.class_label == "Ankle boot"
    assert "17×128" in grad.token_view
    for bad, words in [(dict(method="raw", layer=6), "layer 7 does not exist"),
                       (dict(method="raw", head=4), "head 5 does not exist"),
                       (dict(method="raw", query=(4, 0)), "outside the 4×4 grid")]:
        with pytest.raises(JobFailed, match=words):
            run(**bad)
    with pytest.raises(JobFailed, match="is a CNN"):
        engine.submit("attention", {"path": str(path), "model_id": "efficientnet-lite0",
                                    "method": "rollout"}).result(timeout=60)
    assert issubclass(AttentionError, Exception)


def test_cli_writes_the_overlay_png(tmp_path, capsys):
    from PIL import Image

    from main import main

    out = tmp_path / "map.png"
    code = main(["attention", coffee(), "--model", "efficientnet-lite0", "--method", "eigencam", "--out", str(out),
                 "--colormap", "jet", "--device", "cpu"])
    assert code == 0
    assert Image.open(out).size == (350, 350)
    assert "EigenCAM" in capsys.readouterr().out
    assert main(["attention", coffee(), "--model", "efficientnet-lite0", "--method", "raw", "--device", "cpu"]) == 1


def test_clip_maps_explain_the_similarity_to_a_text():
    """open_clip: class-specific maps target cos(image, text) through the real tokenizer."""
    import open_clip
    from types import SimpleNamespace

    from engine.attention.jobs import _clip_text_target

    torch.manual_seed(0)
    model = open_clip.model.CLIP(embed_dim=16, vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2,
                                                                  head_width=16),
                                 text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=1)).eval()
    adapter = adapt(model)
    assert adapter.spec.kind == "open_clip" and not adapter.spec.has_classes and adapter.spec.grid == (4, 4)
    target = _clip_text_target(SimpleNamespace(device="cpu"), SimpleNamespace(arch="ViT-B-32"), model, "a cat")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        emb = model.encode_image(x)
    value = float(target(emb))
    assert -1.0 <= value <= 1.0
    attn_g, act_g = gradients(adapter, x, target)
    assert attn_g.shape == (2, 4, 17, 17) and act_g.shape == (2, 4, 4, 64)
    assert np.abs(maths.grad_rollout(capture(adapter, x).attn, attn_g)).sum() > 0
    assert np.abs(act_g).max() > 0
