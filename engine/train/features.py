"""Feature extractors for catalogue models: what linear probes and fine-tuning build on.

`feature_extractor(model)` wraps any supported model as (N, C, H, W) normalised input ->
(N, D) features, with `num_features` = D:

* timm models (ViTs, DeiT, EfficientNet-Lite0, the built-in Fashion-MNIST ViT):
  forward_features then forward_head(pre_logits=True), i.e. the pooled representation;
* torchvision's ViT: the [CLS] token after the encoder;
* our MAE: the encoder on the whole image (mask ratio 0), patch tokens averaged;
* open_clip CLIP: encode_image;
* SSL backbones trained here (engine.models.backbones): their own forward;
* a probe/fine-tune classifier trained here: its extractor.

A probe or fine-tune run saves a ProbeClassifier (extractor + head) as its model; it is
rebuilt from its card: the backbone's architecture from the catalogue, then the run's weights.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from engine.models.registry import builder_name, register_builder
from engine.errors import ModelError

#: Catalogue builders whose models have a feature extractor here.
FEATURE_BUILDERS = ("timm", "efficientnet_lite", "vit", "ssl_backbone", "mae", "torchvision_vit", "open_clip",
                    "probe")


def has_feature_extractor(entry) -> bool:
    return builder_name(entry.builder) in FEATURE_BUILDERS


class FeatureExtractor(nn.Module):
    """(N, C, H, W) -> (N, num_features) for one kind of model."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.kind, self.num_features = _kind_of(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        if self.kind == "timm":
            return m.forward_head(m.forward_features(x), pre_logits=True)
        if self.kind == "torchvision-vit":
            x = m._process_input(x)  # (N, L, D)
            cls = m.class_token.expand(x.shape[0], -1, -1)  # (N, 1, D)
            return m.encoder(torch.cat([cls, x], dim=1))[:, 0]  # (N, D): [CLS]
        if self.kind == "mae":
            # Mask ratio 0 keeps every patch; the shuffle order it draws is irrelevant to a mean,
            # and a private generator keeps the global RNG (and so resumed runs) untouched.
            g = torch.Generator(device=x.device)
            g.manual_seed(0)
            latent, _, _, _ = m.forward_encoder(x, 0.0, generator=g)  # (N, 1 + L, D)
            return latent[:, 1:].mean(dim=1)  # (N, D)
        if self.kind == "clip":
            return m.encode_image(x)
        if self.kind == "probe":
            return m.extractor(x)
        return m(x)


def _kind_of(model: nn.Module) -> tuple[str, int]:
    from engine.models.mae import MaskedAutoencoderViT

    if isinstance(model, ProbeClassifier):
        return "probe", model.extractor.num_features
    if isinstance(model, MaskedAutoencoderViT):
        return "mae", int(model.config.embed_dim)
    if hasattr(model, "encode_image") and hasattr(model, "visual"):
        dim = getattr(model.visual, "output_dim", None)
        if dim is None:
            raise ModelError("this CLIP model does not say its embedding size")
        return "clip", int(dim)
    if hasattr(model, "forward_head") and hasattr(model, "forward_features") and hasattr(model, "num_features"):
        return "timm", int(model.num_features)
    if hasattr(model, "_process_input") and hasattr(model, "class_token") and hasattr(model, "hidden_dim"):
        return "torchvision-vit", int(model.hidden_dim)
    if hasattr(model, "num_features"):
        return "plain", int(model.num_features)
    raise ModelError(f"{type(model).__name__} has no feature extractor Patchwork knows")


def feature_extractor(model: nn.Module) -> FeatureExtractor:
    return FeatureExtractor(model)


class ProbeClassifier(nn.Module):
    """A backbone's features -> (optional BN without affine, as MAE's linear probe) -> linear head."""

    def __init__(self, extractor: FeatureExtractor, num_classes: int, head_bn: bool = False):
        super().__init__()
        self.extractor = extractor
        d = extractor.num_features
        self.head = nn.Sequential(nn.BatchNorm1d(d, affine=False, eps=1e-6), nn.Linear(d, num_classes)) if head_bn \
            else nn.Sequential(nn.Linear(d, num_classes))
        nn.init.trunc_normal_(self.head[-1].weight, std=0.01)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.extractor(x).float())


@register_builder("probe")
def build_probe_from_run(entry, path):
    """Catalogue builder for probe/fine-tune runs: the backbone's architecture from the
    catalogue, the head from the card, then every weight from the run's model.safetensors."""
    from safetensors.torch import load_file

    from engine import catalogue
    from engine.catalogue.load import build_model
    from engine.models.builders import read_card

    card = read_card(path)
    try:
        probe = card["probe"]
        backbone_id, num_classes, head_bn = probe["backbone"], int(probe["num_classes"]), bool(probe["head_bn"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: the card has no usable probe section ({exc})") from None
    try:
        backbone_entry = catalogue.get(backbone_id)
    except ModelError:
        raise ModelError(f"{entry.name} was trained on the backbone {backbone_id!r}, which is no longer in the "
                         f"catalogue") from None
    model = ProbeClassifier(feature_extractor(build_model(backbone_entry)), num_classes, head_bn)
    try:
        state = load_file(str(path))
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: cannot read the weights ({exc})") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(f"{path} does not match its backbone {backbone_id}: missing {list(missing)[:5]}, "
                         f"unexpected {list(unexpected)[:5]}")
    return model.eval()
