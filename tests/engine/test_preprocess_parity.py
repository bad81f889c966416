"""Every downloadable catalogue model is fed exactly as its library feeds it.

A model given the wrong mean/std, size or interpolation still passes random-weight parity
tests but answers worse with real weights, so the catalogue's Preprocess is compared with
the library's own description of the pretrained weights (timm's pretrained_cfg, open_clip's
pretrained config, torchvision's weights transforms), and the pixels our numpy path makes are
compared with the library's transform on real photos of three shapes. Nothing is downloaded.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from engine import catalogue
from engine.preprocess import to_input

DOWNLOADABLE = [e for e in catalogue.entries() if e.source.kind in ("url", "hf", "hf-snapshot")]
#: Kandinsky's pipeline (diffusers) preprocesses its own inputs; nothing of ours feeds it pixels.
OWN_PIPELINE = {"kandinsky"}


def library_transform(entry):
    """(the library's eval transform, the Preprocess fields it implies) for a catalogue entry."""
    if entry.builder == "timm":
        import timm
        from timm.data import create_transform, resolve_data_config

        cfg = timm.models.get_pretrained_cfg(entry.arch)
        data = resolve_data_config(pretrained_cfg=cfg.to_dict())
        size = data["input_size"][-1]
        implied = dict(input_size=size, resize=math.floor(size / data["crop_pct"]),
                       mean=tuple(data["mean"]), std=tuple(data["std"]), interpolation=data["interpolation"])
        return create_transform(**data, is_training=False), implied
    if entry.builder == "open_clip":
        import open_clip

        cfg = open_clip.get_pretrained_cfg(entry.arch, entry.option("pretrained"))
        size = open_clip.get_model_config(entry.arch)["vision_cfg"]["image_size"]
        tf = open_clip.image_transform(size, is_train=False, mean=cfg["mean"], std=cfg["std"],
                                       interpolation=cfg["interpolation"], resize_mode=cfg["resize_mode"])
        return tf, dict(input_size=size, resize=size, mean=tuple(cfg["mean"]), std=tuple(cfg["std"]),
                        interpolation=cfg["interpolation"])
    if entry.builder == "torchvision_vit":
        import torchvision

        weights = torchvision.models.get_model_weights(entry.arch).IMAGENET1K_V1  # the catalogue URL's weights
        tf = weights.transforms()
        return tf, dict(input_size=tf.crop_size[0], resize=tf.resize_size[0], mean=tuple(tf.mean),
                        std=tuple(tf.std), interpolation=tf.interpolation.value)
    if entry.builder == "mae":
        # FAIR's MAE repo has no config object: util/datasets.py build_transform (eval) is
        # Resize(int(224 / (224 / 256)), BICUBIC) + CenterCrop(224) + timm's ImageNet mean/std.
        from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, create_transform

        tf = create_transform(224, is_training=False, interpolation="bicubic", crop_pct=224 / 256,
                              mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD)
        return tf, dict(input_size=224, resize=256, mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD,
                        interpolation="bicubic")
    raise AssertionError(f"{entry.id}: no library preprocessing known for builder {entry.builder!r}")


@pytest.fixture(scope="module")
def photos():
    """Real photos in three shapes (landscape, portrait, square), from scikit-image's samples."""
    from skimage import data

    coffee = Image.fromarray(data.coffee())  # 600 x 400
    astronaut = Image.fromarray(data.astronaut())  # 512 x 512
    return [coffee, coffee.transpose(Image.Transpose.ROTATE_90), astronaut, coffee.resize((301, 237))]


@pytest.mark.parametrize("entry", [e for e in DOWNLOADABLE if e.builder not in OWN_PIPELINE], ids=lambda e: e.id)
def test_catalogue_preprocessing_is_the_librarys(entry, photos):
    tf, implied = library_transform(entry)
    pp = entry.preprocess
    ours = dict(input_size=pp.input_size, resize=pp.resize, mean=tuple(pp.mean), std=tuple(pp.std),
                interpolation=pp.interpolation)
    for key, value in implied.items():
        if isinstance(value, tuple):
            assert np.allclose(ours[key], value, atol=1e-6), f"{entry.id}: {key} {ours[key]} != library {value}"
        else:
            assert ours[key] == value, f"{entry.id}: {key} {ours[key]} != library {value}"
    for img in photos:
        expected = tf(img).numpy()
        got = to_input(img, pp)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-5, f"{entry.id}: pixels differ on a {img.size} photo"


def test_every_downloadable_entry_is_covered():
    builders = {e.builder for e in DOWNLOADABLE}
    assert builders <= {"timm", "open_clip", "torchvision_vit", "mae"} | OWN_PIPELINE
    assert len([e for e in DOWNLOADABLE if e.builder not in OWN_PIPELINE]) >= 14


def test_a_wrong_mean_is_caught(photos):
    """The check can fail: ImageNet statistics given to a timm augreg ViT (which wants 0.5)."""
    from dataclasses import replace

    entry = catalogue.get("timm-vit-tiny")
    wrong = replace(entry.preprocess, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    tf, _ = library_transform(entry)
    assert np.abs(to_input(photos[0], wrong) - tf(photos[0]).numpy()).max() > 0.1
