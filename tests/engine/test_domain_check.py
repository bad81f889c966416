"""The domain check: built-in cards declare what they know; pictures and prompts outside it are
flagged (results carry a DomainWarning, the CLI prints one `warning:` line); MAE never calls a
difference within noise "better"."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from engine import catalogue
from engine.catalogue.domain import domain_of
from engine.data import fashion_mnist
from engine.domain_check import image_warning, inputs, prompt_warning
from engine.mae.quality import compare
from engine.resources import RESOURCES
from main import main
from tests.gui.conftest import sample

needs_fmnist = pytest.mark.skipif(not fashion_mnist.is_available(),
                                  reason="needs the real Fashion-MNIST: apt-get install dataset-fashion-mnist")
BUILT_IN = ("fmnist-vit-tiny", "fmnist-mae-tiny", "fmnist-albef-tiny", "fmnist-vilt-tiny", "fmnist-lit-tiny",
            "fmnist-unclip-tiny-prior", "fmnist-unclip-tiny-decoder", "fmnist-moco-v2-resnet16")


def _idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _garment(rng) -> np.ndarray:
    """A light, textured garment-like shape centred on black, 28×28, as Fashion-MNIST draws them."""
    img = Image.new("L", (28, 28), 0)
    d = ImageDraw.Draw(img)
    w, h = int(rng.integers(8, 12)), int(rng.integers(8, 12))
    d.rectangle([14 - w, 14 - h, 14 + w, 14 + h], fill=int(rng.integers(120, 230)))
    d.ellipse([14 - w // 2, 14 - h - 2, 14 + w // 2, 14 - h + 4], fill=0)  # a neckline
    a = np.asarray(img, dtype=np.int16) + (np.asarray(img) > 0) * rng.integers(-30, 30, (28, 28))
    return np.clip(a, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def idx_images(tmp_path_factory) -> np.ndarray:
    """Twelve Fashion-MNIST-format images read back through the dataset's own IDX reader."""
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("fmnist-idx")
    images = np.stack([_garment(rng) for _ in range(12)])
    for split in ("train", "t10k"):
        _idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        _idx(folder / f"{split}-labels-idx1-ubyte.gz", np.arange(12) % 10)
    return fashion_mnist.load_fashion_mnist("test", root=folder).images


# ---------------------------------------------------------------------------- cards
def test_every_built_in_card_declares_its_domain():
    for model_id in BUILT_IN:
        d = domain_of(catalogue.get(model_id))
        assert d is not None and d.kind == "fashion-mnist", model_id
        assert "28×28 grayscale" in d.text and d.classes == fashion_mnist.class_names()
        assert dict(d.limits).keys() == {"chroma_max", "border_mean_max", "dark_share_min"}
        for other in d.for_photos:  # the models offered instead are real catalogue entries
            assert catalogue.get(other).source.kind in ("url", "hf", "hf-snapshot")
    assert domain_of(catalogue.get("fmnist-vit-tiny")).energy_max is not None
    for text_model in ("fmnist-albef-tiny", "fmnist-vilt-tiny", "fmnist-lit-tiny", "fmnist-unclip-tiny-decoder"):
        assert {"sneaker", "dress", "bag"} <= set(domain_of(catalogue.get(text_model)).vocabulary)
    assert domain_of(catalogue.get("efficientnet-lite0")) is None  # ImageNet: no warning on photos


def test_a_run_trained_here_on_fashion_mnist_gets_the_same_domain(tmp_path):
    from engine.catalogue.entry import ModelEntry, Source

    (tmp_path / "card.json").write_text(json.dumps({"dataset": {"name": "fashion-mnist", "classes": ["a", "b"]}}))
    run = ModelEntry(id="run-x", name="my ALBEF", family="albef", panels=("match",), description="", licence="user",
                     size_mb=1.0, source=Source("run", str(tmp_path / "model.safetensors")), builder="albef")
    d = domain_of(run)
    assert d.kind == "fashion-mnist" and d.classes == ("a", "b") and "sneaker" in d.vocabulary and d.limits
    (tmp_path / "card.json").write_text(json.dumps({"dataset": {"name": "my-folder"}}))
    assert domain_of(run) is None  # a folder of the user's own photos: nothing to warn about


def test_adding_the_domain_left_weights_checksums_and_metrics_alone():
    card = json.loads((RESOURCES / "checkpoints" / "fmnist-vit-tiny" / "card.json").read_text(encoding="utf-8"))
    assert card["metrics"] and card["sha256"] == catalogue.get("fmnist-vit-tiny").sha256


# ---------------------------------------------------------------------------- images
def test_app_statistics_equal_the_calibration_statistics(idx_images):
    """The bounds are calibrated with batch_stats; the app measures with image_stats: they must agree."""
    pp = catalogue.get("fmnist-vit-tiny").preprocess
    batch = inputs.batch_stats(idx_images)
    for i, a in enumerate(idx_images):
        s = inputs.image_stats(Image.fromarray(a).convert("RGB"), pp)
        assert s.chroma == 0.0
        assert s.border_mean == pytest.approx(batch["border_mean"][i], abs=1e-6)
        assert s.dark_share == pytest.approx(batch["dark_share"][i], abs=1e-9)


def test_fashion_mnist_format_images_pass_and_photos_are_flagged(idx_images):
    vit = catalogue.get("fmnist-vit-tiny")
    for a in idx_images:
        assert image_warning(vit, Image.fromarray(a).convert("RGB")) is None
    cat = image_warning(vit, Image.open(sample("chelsea.png")).convert("RGB"))
    assert cat is not None and "is in colour" in cat.reasons[0]
    assert [m for m, _, _ in cat.suggest] == ["tv-vit-b-16", "timm-vit-base"]
    gray_photo = image_warning(vit, Image.open(sample("camera.png")).convert("RGB"))
    assert gray_photo is not None and "black background" in gray_photo.reasons[0]
    # the same photo is fine for an ImageNet model
    assert image_warning(catalogue.get("efficientnet-lite0"), Image.open(sample("chelsea.png")).convert("RGB")) is None


@needs_fmnist
def test_real_test_images_rarely_flagged_with_the_models_energy():
    from engine.domain_check.calibrate import classifier_logits

    test = fashion_mnist.load_fashion_mnist("test").images[:300]
    logits = classifier_logits("fmnist-vit-tiny", test)
    vit = catalogue.get("fmnist-vit-tiny")
    flagged = sum(image_warning(vit, Image.fromarray(a).convert("RGB"), logits=z) is not None
                  for a, z in zip(test, logits))
    assert flagged <= 6  # the bounds leave about 0.6 % of the training split outside


# ---------------------------------------------------------------------------- prompts
def test_prompt_with_none_of_the_known_words_is_flagged():
    decoder = catalogue.get("fmnist-unclip-tiny-decoder")
    w = prompt_warning(decoder, "a red sports car on a beach at sunset")
    assert w is not None and "names none of the things it learned" in w.message
    assert [m for m, _, _ in w.suggest] == ["kandinsky-2-2-prior", "kandinsky-2-2-decoder"]
    for fine in ("a photo of a sneaker", "Two leather BOOTS", "a summer dress.", "a t-shirt"):
        assert prompt_warning(decoder, fine) is None, fine
    albef = catalogue.get("fmnist-albef-tiny")
    assert prompt_warning(albef, ["a photo of a cat", "a photo of a bag"], "caption").reasons == (
        "1 of 2 captions name none of the things it learned (bag, blouse, boot, coat, dress, flip-flop, …)",)
    assert prompt_warning(catalogue.get("fmnist-vit-tiny"), "a photo of a cat") is None  # no text side


# ---------------------------------------------------------------------------- MAE verdicts
def test_mae_differences_within_noise_are_about_the_same():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.02, 0.08, 37)
    assert compare(base * 0.996, base) == "about the same"  # 0.0497 vs 0.0499: 0.4 %
    assert compare(base * 0.5, base) == "better"
    assert compare(base * 1.5, base) == "worse"
    noisy = base + rng.normal(0, 0.05, 37)  # a 10 % mean difference, but a wide spread over patches
    noisy = noisy - noisy.mean() + base.mean() * 0.9
    assert compare(noisy, base) == "about the same"
    assert compare([], []) == "about the same"


# ---------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("argv", [
    ["classify", "IMG", "--model", "fmnist-vit-tiny"],
    ["mae", "IMG"],
    ["match", "IMG", "a photo of a cat"],
    ["attention", "IMG", "--model", "fmnist-vit-tiny"],
])
def test_cli_prints_one_warning_line_and_keeps_the_exit_code(capsys, argv):
    argv = [sample("coffee.png") if a == "IMG" else a for a in argv]
    assert main([*argv, "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "knows only 28×28 grayscale clothing" in warnings[0]
    assert "warning" not in captured.out
    if argv[0] == "match":  # the picture and the caption: both reasons on the one line
        assert "this picture is in colour" in warnings[0] and "the caption names none" in warnings[0]
    if argv[0] == "mae":  # the coffee photo's 0.0497 vs 0.0499 is no longer "better"
        assert "better" not in captured.out and "about the same" in captured.out


def test_cli_is_silent_for_an_image_the_model_knows(capsys, idx_images, tmp_path):
    path = tmp_path / "garment.png"
    Image.fromarray(idx_images[0]).save(path)
    assert main(["mae", str(path), "--device", "cpu"]) == 0
    assert "warning:" not in capsys.readouterr().err


def test_generate_cli_warns_on_an_unknown_prompt(capsys, tmp_path):
    assert main(["generate", "a red sports car on a beach at sunset", "--n", "1", "--steps", "2",
                 "--prior-steps", "2", "--out", str(tmp_path), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert sum(line.startswith("warning:") for line in err.splitlines()) == 1
    assert "the prompt names none of the things it learned" in err


def test_generate_cli_warns_on_a_photo_given_for_variations(capsys, tmp_path):
    assert main(["generate", "--image", sample("chelsea.png"), "--n", "1", "--steps", "2",
                 "--out", str(tmp_path), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert sum(line.startswith("warning:") for line in err.splitlines()) == 1 and "this picture is in colour" in err


def test_interpolation_warns_when_an_end_is_outside(tmp_path):
    from engine.core import Engine

    eng = Engine(device="cpu").start()
    try:
        eng.wait_ready()
        fast = {"frames": 2, "steps": 2, "prior_steps": 2, "neighbour_pool": 20}
        out = eng.submit("generate_interpolate", {"a": {"prompt": "a photo of a sneaker"},
                                                  "b": {"prompt": "a red sports car"},
                                                  "gif_path": str(tmp_path / "a.gif"), **fast}).result(timeout=300)
        assert out.domain_warning is not None and len(out.domain_warning.reasons) == 1
        both = eng.submit("generate_interpolate", {"a": {"prompt": "a dress"}, "b": {"prompt": "two boots"},
                                                   "gif_path": str(tmp_path / "b.gif"), **fast}).result(timeout=300)
        assert both.domain_warning is None
    finally:
        eng.shutdown()
