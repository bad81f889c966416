"""The tiny unCLIP: loading its parts from the catalogue and running its two stages.

    prompt --LiT text side (MiniLM + projection)--> text embedding z_t      (B, D)
           --prior P(z_i | y)-->                     image embedding z_i     (B, D)
           --decoder P(x | z_i), DDIM + guidance-->  28×28 image

Every part is a catalogue entry (built in under resources/checkpoints/, or a run trained
here), so the model cache loads each once. Randomness comes from one CPU generator per
image, seeded with that image's seed: first the prior's noise, then the decoder's x_T.
The same seed therefore gives the same image, bit for bit on the CPU, whatever the device
drew before.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.models.registry import register_builder
from engine.errors import ModelError
from engine.generate.diffusion import NoiseSchedule, ddim_iter, guided, slerp
from engine.generate.prior import PriorConfig, build_prior, sample_prior
from engine.generate.unet import UNet, UNetConfig
from engine.models.builders import load_strict

IMAGE_SIZE = 28


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 1, H, W) in [-1, 1] -> (B, H, W) uint8."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[:, 0].cpu().numpy()


# ---------------------------------------------------------------------------- loading the parts
def part_card(weights: str | Path) -> dict:
    """The card describing one weights file: a run's card.json, or the part of a bundle card
    (resources/checkpoints/fmnist-unclip-tiny/card.json lists its files under "parts")."""
    weights = Path(weights)
    card_path = weights.with_name("card.json")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{card_path}: cannot read the card ({exc})") from None
    if "parts" in card:
        try:
            return card["parts"][weights.name]
        except KeyError:
            raise ModelError(f"{card_path} does not describe {weights.name}") from None
    return card


def load_prior(weights: str | Path) -> torch.nn.Module:
    try:
        cfg = PriorConfig.from_dict(part_card(weights)["model_config"])
    except (KeyError, TypeError) as exc:
        raise ModelError(f"{weights}: its card has no prior model_config ({exc})") from None
    return load_strict(build_prior(cfg), weights)


def load_decoder(weights: str | Path) -> torch.nn.Module:
    try:
        cfg = UNetConfig.from_dict(part_card(weights)["model_config"])
    except (KeyError, TypeError) as exc:
        raise ModelError(f"{weights}: its card has no U-Net model_config ({exc})") from None
    return load_strict(UNet(cfg), weights)


@register_builder("unclip_prior")
def build_prior_from_run(entry, path):
    return load_prior(path)


@register_builder("unclip_decoder")
def build_decoder_from_run(entry, path):
    return load_decoder(path)


build_prior_from_resources = build_prior_from_run
build_decoder_from_resources = build_decoder_from_run


# ---------------------------------------------------------------------------- pipelines
@dataclass(frozen=True)
class UnclipSpec:
    """Which catalogue entries make one text-to-image pipeline."""

    id: str
    name: str
    clip: str
    priors: dict = field(default_factory=dict)  # kind -> catalogue id
    decoder: str = ""
    kind: str = "tiny"  # "tiny" (ours) | "kandinsky" (diffusers)
    negative_prompt: bool = False  # whether the pipeline can use one
    image_size: int = IMAGE_SIZE
    description: str = ""


TINY = UnclipSpec(
    id="fmnist-unclip-tiny", name="Tiny unCLIP · Fashion-MNIST (built in)", clip="fmnist-lit-tiny",
    priors={"diffusion": "fmnist-unclip-tiny-prior", "regression": "fmnist-unclip-tiny-prior-regression"},
    decoder="fmnist-unclip-tiny-decoder", negative_prompt=True,
    description="Trained here on Fashion-MNIST: LiT (locked MiniLM) → prior → U-Net decoder, 28×28 grayscale.")
KANDINSKY = UnclipSpec(
    id="kandinsky-2-2", name="Kandinsky 2.2 (diffusers, optional)", clip="", kind="kandinsky",
    priors={"diffusion": "kandinsky-2-2-prior"}, decoder="kandinsky-2-2-decoder", negative_prompt=True,
    image_size=512, description="Pretrained unCLIP-style prior + decoder via diffusers; large download.")


def pipelines() -> list[UnclipSpec]:
    """The built-in pipelines, then one per unCLIP decoder trained here (with the built-in
    priors when their CLIP matches, or the priors trained here for that CLIP)."""
    from engine import catalogue

    out = [TINY, KANDINSKY]
    run_priors = [e for e in catalogue.entries(family="unclip-prior") if e.source.kind == "run"]
    for dec in catalogue.entries(family="unclip-decoder"):
        if dec.source.kind != "run":
            continue
        clip = dec.option("clip", TINY.clip)
        priors = {e.arch: e.id for e in run_priors if e.option("clip") == clip}
        if clip == TINY.clip:
            priors = {**TINY.priors, **priors}
        if priors:
            out.append(UnclipSpec(id=dec.id, name=f"unCLIP with {dec.name}", clip=clip, priors=priors,
                                  decoder=dec.id, description=dec.description))
    return out


def spec(pipeline_id: str) -> UnclipSpec:
    for s in pipelines():
        if s.id == pipeline_id:
            return s
    raise ModelError(f"unknown generator {pipeline_id!r}; known: {', '.join(s.id for s in pipelines())}")


class TinyUnclip:
    """The loaded parts of a tiny unCLIP on one device."""

    def __init__(self, ctx, s: UnclipSpec, *, parts: dict | None = None):
        """Parts come from the catalogue through the engine's model cache; or, with
        parts={"clip", "priors": {kind: module}, "decoder"} and ctx=None, as given (on the CPU)."""
        from engine.catalogue import get

        self.spec = s
        self._ctx = ctx
        pp = get(s.clip).preprocess
        self.mean, self.std = float(pp.mean[0]), float(pp.std[0])
        self._prior_ids = dict(s.priors)
        self.schedule = NoiseSchedule.cosine()
        if parts is not None:
            self.device = "cpu"
            self.clip, self.decoder, self._priors = parts["clip"], parts["decoder"], dict(parts["priors"])
            self._prior_ids = {k: k for k in self._priors}
            return
        from engine.catalogue.load import load_model

        self.device = ctx.device
        self._priors = None
        self.clip = load_model(ctx, s.clip)
        self.decoder = load_model(ctx, s.decoder)

    @property
    def embed_dim(self) -> int:
        return int(self.decoder.config.cond_dim)

    def prior(self, kind: str):
        from engine.catalogue.load import load_model

        if kind not in self._prior_ids:
            raise ModelError(f"{self.spec.name} has no {kind} prior (it has: {', '.join(self._prior_ids)})")
        if self._priors is not None:
            return self._priors[kind]
        return load_model(self._ctx, self._prior_ids[kind])

    # ------------------------------------------------------------------ stage 0: CLIP
    @torch.inference_mode()
    def text_embedding(self, prompts: list[str]) -> torch.Tensor:
        return self.clip.encode_text(list(prompts)).float()

    @torch.inference_mode()
    def image_embedding(self, images: np.ndarray) -> torch.Tensor:
        """(N, 28, 28) uint8 -> (N, D) unit-norm image embeddings (for variations)."""
        from engine.generate.embeddings import normalise_images

        x = normalise_images(torch.from_numpy(np.array(images, dtype=np.uint8)).to(self.device), self.mean, self.std)
        return self.clip.encode_image(x).float()

    # ------------------------------------------------------------------ stage 1: the prior
    @torch.inference_mode()
    def prior_embedding(self, text_emb: torch.Tensor, kind: str, prior_noise: torch.Tensor,
                        steps: int = 32, guidance: float = 1.0) -> torch.Tensor:
        return sample_prior(self.prior(kind), text_emb, noise=prior_noise.to(self.device), steps=steps,
                            guidance=guidance, schedule=self.schedule)

    # ------------------------------------------------------------------ stage 2: the decoder
    def noise(self, seeds: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(prior noise (B, D), decoder x_T (B, 1, 28, 28)), one CPU generator per seed."""
        prior, x_T = [], []
        for s in seeds:
            g = torch.Generator().manual_seed(int(s))
            prior.append(torch.randn(self.embed_dim, generator=g))
            x_T.append(torch.randn((1, IMAGE_SIZE, IMAGE_SIZE), generator=g))
        return torch.stack(prior), torch.stack(x_T)

    def decode_iter(self, image_emb: torch.Tensor, x_T: torch.Tensor, steps: int, guidance: float,
                    negative_emb: torch.Tensor | None = None):
        """DDIM steps of the decoder (a generator of DDIMStep), under inference mode.
        negative_emb: guide away from this image embedding instead of from "no embedding"."""
        fn = guided(self.decoder, image_emb.to(self.device), float(guidance),
                    None if negative_emb is None else negative_emb.to(self.device))
        with torch.inference_mode():
            yield from ddim_iter(fn, x_T.to(self.device), self.schedule, int(steps), clip=1.0)

    def decode(self, image_emb: torch.Tensor, x_T: torch.Tensor, steps: int, guidance: float,
               negative_emb: torch.Tensor | None = None) -> np.ndarray:
        x = x_T
        for step in self.decode_iter(image_emb, x_T, steps, guidance, negative_emb):
            x = step.x
        return to_uint8(x)


def interpolate_embeddings(a: torch.Tensor, b: torch.Tensor, frames: int) -> torch.Tensor:
    """(frames, D): slerp from a to b (both (D,)), endpoints included."""
    ts = np.linspace(0.0, 1.0, max(2, int(frames)))
    return torch.stack([slerp(a, b, float(t)) for t in ts])
