"""What of a trained model goes into ONNX, and with which inputs it is checked.

One run gives one or two graphs ("parts"):
  classifier    images -> logits                      (supervised ViT, linear probe, fine-tune)
  ssl-backbone  images -> features                    (MoCo, SimCLR, InstDisc backbones)
  mae           images -> latent tokens, no masking   (the MAE encoder; the decoder stays behind)
  clip          images -> embedding, and token ids -> embedding (the two towers of LiT/CLIP)
Every part has the sample inputs it is verified with: seeded random images at the model's
input size (batch 4, while the graph is traced at batch 2, so the dynamic batch axis is
exercised too) and, for text, a few captions through the tower's own tokenizer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from engine.errors import ExportError
from engine.export import EXPORTABLE
TRACE_BATCH, CHECK_BATCH = 2, 4
SAMPLE_TEXTS = ("a photo of a t-shirt", "an ankle boot", "a bag", "sneakers on a black background")
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class Part:
    """One ONNX graph: the module, its named inputs for tracing and for the check."""

    suffix: str  # "" for single-graph models, "image" / "text" for CLIP towers
    module: nn.Module
    output: str
    trace_inputs: dict[str, torch.Tensor]
    check_inputs: dict[str, torch.Tensor]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)
    reference: nn.Module | None = None  # what the graph is checked against, when not `module` itself

    @property
    def input_names(self) -> list[str]:
        return list(self.trace_inputs)


class _Positional(nn.Module):
    """Calls `fn` with the graph's inputs in order (the exporter passes them positionally)."""

    def __init__(self, owner: nn.Module, fn):
        super().__init__()
        self.owner = owner
        self.fn = fn

    def forward(self, *inputs):
        return self.fn(*inputs)


class MAEEncoder(nn.Module):
    """The MAE encoder over every patch, in order: patch embedding + positions, [CLS], blocks,
    norm. `forward_encoder(x, 0.0)` gives the same tokens but shuffled by its random masking."""

    def __init__(self, mae: nn.Module):
        super().__init__()
        self.mae = mae

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        m = self.mae
        x = m.patch_embed(imgs) + m.pos_embed[:, 1:, :]  # (N, L, D)
        cls = (m.cls_token + m.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)  # (N, 1, D)
        x = torch.cat([cls, x], dim=1)  # (N, 1 + L, D)
        for blk in m.blocks:
            x = blk(x)
        return m.norm(x)


def _images(pp, batch: int, seed: int) -> torch.Tensor:
    """Normalised-looking random images (N, C, S, S): pixels uniform in [0, 1], then mean/std."""
    channels = 1 if pp.grayscale else 3
    rng = np.random.default_rng(seed)
    x = rng.random((batch, channels, pp.input_size, pp.input_size), dtype=np.float32)
    mean = np.asarray(pp.mean[:channels], np.float32)[None, :, None, None]
    std = np.asarray(pp.std[:channels], np.float32)[None, :, None, None]
    return torch.from_numpy((x - mean) / std)


def _image_part(suffix: str, module: nn.Module, output: str, pp) -> Part:
    return Part(suffix, module, output, {"images": _images(pp, TRACE_BATCH, 0)}, {"images": _images(pp, CHECK_BATCH, 1)},
                {"images": {0: "batch"}, output: {0: "batch"}})


def tokens(tower, texts) -> dict[str, torch.Tensor]:
    """The tower's own tokenizer output as the graph's three int64 inputs."""
    tok = tower.tokenize(list(texts))
    ids = tok["input_ids"].long()
    types = tok.get("token_type_ids")
    return {"input_ids": ids, "attention_mask": tok["attention_mask"].long(),
            "token_type_ids": torch.zeros_like(ids) if types is None else types.long()}


def _text_part(lit) -> Part:
    tower = lit.text_tower
    if tower is None or not hasattr(tower, "forward_tokens"):
        raise ExportError("this CLIP model has no text tower to export")

    def encode(input_ids, attention_mask, token_type_ids):
        return lit.encode_text_features(tower.forward_tokens(input_ids, attention_mask, token_type_ids).float())

    axes = {n: {0: "batch", 1: "tokens"} for n in TEXT_INPUTS} | {"embedding": {0: "batch"}}
    return Part("text", _Positional(lit, encode), "embedding", tokens(tower, SAMPLE_TEXTS[:TRACE_BATCH]),
                tokens(tower, SAMPLE_TEXTS), axes)


def fold_head_norm(model: nn.Module) -> nn.Module:
    """A probe's head BatchNorm1d(affine=False) -> Linear, folded into one Linear: the exporter
    cannot size a batch norm after the head's float() cast, and in eval mode it is affine anyway."""
    head = getattr(model, "head", None)
    if not (isinstance(head, nn.Sequential) and len(head) == 2 and isinstance(head[0], nn.BatchNorm1d)
            and isinstance(head[1], nn.Linear)):
        return model
    norm, linear = head
    scale = (norm.running_var + norm.eps).rsqrt()  # (d,)
    if norm.affine:
        shift = norm.bias - norm.running_mean * scale * norm.weight
        scale = scale * norm.weight
    else:
        shift = -norm.running_mean * scale
    folded = nn.Linear(linear.in_features, linear.out_features)
    with torch.no_grad():
        folded.weight.copy_(linear.weight * scale[None, :])
        folded.bias.copy_(linear.bias + linear.weight @ shift)
    copy = type(model).__new__(type(model))
    copy.__dict__ = {**model.__dict__, "_modules": {**model._modules, "head": nn.Sequential(folded)}}
    return copy.eval()


def parts_of(family: str, model: nn.Module, pp) -> list[Part]:
    """The graphs to export for a model of `family`, in eval mode on the CPU."""
    if family == "classifier":
        part = _image_part("", fold_head_norm(model), "logits", pp)
        part.reference = model
        return [part]
    if family == "ssl-backbone":
        return [_image_part("", model, "features", pp)]
    if family == "mae":
        return [_image_part("", MAEEncoder(model), "latent", pp)]
    if family == "clip":
        if not hasattr(model, "encode_image") or not hasattr(model, "text_tower"):
            raise ExportError("only CLIP/LiT models trained here can be exported")
        return [_image_part("image", _Positional(model, model.encode_image), "embedding", pp), _text_part(model)]
    raise ExportError(f"a {family} model cannot be exported to ONNX yet; export covers "
                      f"{', '.join(EXPORTABLE)} runs")
