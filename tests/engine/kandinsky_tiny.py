"""Tiny random-initialised Kandinsky 2.2 prior and decoder in the published layout.

The components are diffusers' and transformers' own classes with tiny configs (sizes after
diffusers' tests/pipelines/kandinsky2_2), saved with save_pretrained exactly as the hub
repos kandinsky-community/kandinsky-2-2-prior and -decoder are laid out (model_index.json
plus one subfolder per component, safetensors), inside an HF cache tree
(models--org--name/refs/main + snapshots/<commit>/) so the catalogue finds them as
downloaded. Used by tests/engine/test_kandinsky.py and benchmarks/kandinsky_overhead.py.
"""
from __future__ import annotations

import json
from pathlib import Path

PRIOR_REPO = "kandinsky-community/kandinsky-2-2-prior"
DECODER_REPO = "kandinsky-community/kandinsky-2-2-decoder"
COMMIT = "0" * 40
EMBED = 32  # CLIP projection = image embedding width = U-Net's encoder_hid_dim


def tiny_tokenizer(folder: Path):
    """A byte-level CLIP BPE tokenizer with no merges: every character is a token."""
    from transformers import CLIPTokenizer

    # GPT-2's byte -> printable character table (256 entries), as CLIP's BPE uses it
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    chars = [chr(b) if b in keep else chr(next(extra)) for b in range(256)]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": i + len(chars) for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77), len(vocab)


def prior_components(tmp: Path, seed: int = 0) -> dict:
    import torch
    from diffusers import PriorTransformer, UnCLIPScheduler
    from transformers import (CLIPImageProcessor, CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)

    torch.manual_seed(seed)
    tokenizer, vocab_size = tiny_tokenizer(tmp / "tokenizer-src")
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
        hidden_size=EMBED, projection_dim=EMBED, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        vocab_size=vocab_size, max_position_embeddings=77)).eval()
    prior = PriorTransformer(num_attention_heads=2, attention_head_dim=12, embedding_dim=EMBED, num_layers=1).eval()
    with torch.no_grad():  # random-init clip_std is 0, which would zero every embedding
        prior.clip_std.fill_(1.0)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=EMBED, image_size=32, projection_dim=EMBED, intermediate_size=37, num_attention_heads=4,
        num_channels=3, num_hidden_layers=2, patch_size=8)).eval()
    image_processor = CLIPImageProcessor(
        crop_size=32, do_center_crop=True, do_normalize=True, do_resize=True, resample=3, size=32,
        image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711])
    scheduler = UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample", num_train_timesteps=1000,
                                clip_sample=True, clip_sample_range=10.0)
    return {"prior": prior, "image_encoder": image_encoder, "text_encoder": text_encoder, "tokenizer": tokenizer,
            "scheduler": scheduler, "image_processor": image_processor}


def decoder_components(seed: int = 0) -> dict:
    import torch
    from diffusers import DDPMScheduler, UNet2DConditionModel, VQModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        in_channels=4, out_channels=8, addition_embed_type="image",  # 8 = eps + learned variance, as published
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", block_out_channels=(32, 64), layers_per_block=1,
        encoder_hid_dim=EMBED, encoder_hid_dim_type="image_proj", cross_attention_dim=32, attention_head_dim=4,
        resnet_time_scale_shift="scale_shift", class_embed_type=None).eval()
    movq = VQModel(
        block_out_channels=[32, 64], down_block_types=["DownEncoderBlock2D", "AttnDownEncoderBlock2D"],
        in_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8, norm_type="spatial",
        num_vq_embeddings=12, out_channels=3, up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D"],
        vq_embed_dim=4).eval()
    # the published decoder's scheduler settings
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=0.00085, beta_end=0.012,
                              clip_sample=False, steps_offset=1, prediction_type="epsilon", thresholding=False,
                              timestep_spacing="leading")
    return {"unet": unet, "movq": movq, "scheduler": scheduler}


def snapshot_dir(hf_home: Path, repo_id: str) -> Path:
    """Where huggingface_hub keeps `repo_id`'s main revision under HF_HOME, ref written."""
    repo = Path(hf_home) / "hub" / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return repo / "snapshots" / COMMIT


def write_tiny_kandinsky(hf_home: Path, seed: int = 0):
    """Save both tiny pipelines into an HF cache under `hf_home`; returns the in-memory
    (prior, decoder) pipelines that were saved, the reference to compare against."""
    from diffusers import KandinskyV22Pipeline, KandinskyV22PriorPipeline

    hf_home = Path(hf_home)
    prior = KandinskyV22PriorPipeline(**prior_components(hf_home, seed))
    decoder = KandinskyV22Pipeline(**decoder_components(seed + 1))
    prior.save_pretrained(snapshot_dir(hf_home, PRIOR_REPO), safe_serialization=True)
    decoder.save_pretrained(snapshot_dir(hf_home, DECODER_REPO), safe_serialization=True)
    for pipe in (prior, decoder):
        pipe.set_progress_bar_config(disable=True)
    return prior, decoder


def load_direct(hf_home: Path):
    """The saved snapshots loaded by diffusers itself (no Patchwork code): (prior, decoder)."""
    from diffusers import KandinskyV22Pipeline, KandinskyV22PriorPipeline

    pipes = [cls.from_pretrained(snapshot_dir(Path(hf_home), repo), local_files_only=True)
             for cls, repo in ((KandinskyV22PriorPipeline, PRIOR_REPO), (KandinskyV22Pipeline, DECODER_REPO))]
    for pipe in pipes:
        pipe.set_progress_bar_config(disable=True)
    return tuple(pipes)


def reference(prior, decoder, prompt: str, seed: int, n: int, steps: int, prior_steps: int, guidance: float,
              prior_guidance: float, size: int):
    """diffusers called directly as the job calls it: (n, size, size, 3) floats in [0, 1]."""
    import torch

    gens = [torch.Generator(device="cpu").manual_seed(seed + i) for i in range(n)]
    emb = prior(prompt, negative_prompt=None, num_images_per_prompt=n, num_inference_steps=prior_steps,
                guidance_scale=prior_guidance, generator=gens)
    return decoder(image_embeds=emb.image_embeds, negative_image_embeds=emb.negative_image_embeds, height=size,
                   width=size, num_inference_steps=steps, guidance_scale=guidance, generator=gens,
                   output_type="np").images
