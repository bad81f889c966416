"""A small CLIP for small images: a tiny ViT image tower, a text tower, two projections.

Two ways to train it (engine/train/recipes/clip.py):

* "lit" (Locked-image Tuning's text-side twin): the pretrained sentence encoder MiniLM is
  *locked*; only the image tower, both projections and the temperature learn. The weights
  file then holds no text tower at all: MiniLM comes from its own package.
* "clip": both towers learn; the text tower is either a tiny BERT trained from scratch
  (MiniLM's tokenizer, fresh weights) or MiniLM itself, unlocked.

As in CLIP, features are projected into one joint space and L2-normalised, and the
similarity of an image to a text is their dot product times exp(logit_scale), clamped
at 100.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from engine.configs import reject_unknown_keys
from engine.errors import ModelError
from engine.models.registry import register_builder
from engine.models.locked import HoldsLocked

#: exp(logit_scale) never exceeds this (CLIP's clamp: it keeps training stable).
MAX_LOGIT_SCALE = math.log(100.0)
TEXT_TOWERS = ("minilm", "tiny")


@dataclass(frozen=True)
class TinyTextConfig:
    """A small BERT trained from scratch on MiniLM's WordPiece vocabulary."""

    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 256
    max_position_embeddings: int = 64


@dataclass(frozen=True)
class LiTConfig:
    vision: dict = field(default_factory=dict)  # engine.models.vit.ViTConfig fields (num_classes 0)
    embed_dim: int = 128  # the joint embedding space
    text_tower: str = "minilm"  # "minilm" (pretrained) | "tiny" (from scratch)
    lock_text: bool = True  # the text tower does not learn (and is not saved)
    text_dim: int = 384  # width of the text tower's pooled features
    tiny_text: dict = field(default_factory=dict)  # TinyTextConfig fields when text_tower == "tiny"
    init_temperature: float = 0.07

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LiTConfig":
        reject_unknown_keys(cls, d, "LiT")
        return cls(**d)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor, gather=None,
              offset: int = 0):
    """CLIP's symmetric InfoNCE over the N×N similarity matrix.

    image_emb, text_emb: (N, D) L2-normalised; row i of each is a matching pair.
    Returns (loss, logits_per_image) with logits_per_image[i, j] = scale · <image_i, text_j>.
    The loss is the mean of the cross-entropy over rows (image → its text) and over
    columns (text → its image); the positives are the diagonal.

    Under torchrun, `gather` (engine.train.distributed.gather_with_grad) brings every rank's
    rows and `offset` says where this rank's start: this rank's n rows are scored against all
    B (open_clip's "local loss"), so the negatives are the whole global batch.
    """
    scale = logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
    if gather is None:
        logits_per_image = scale * image_emb @ text_emb.t()  # N x N
        labels = torch.arange(len(image_emb), device=image_emb.device)
        loss = 0.5 * (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_image.t(), labels))
        return loss, logits_per_image
    logits_per_image = scale * image_emb @ gather(text_emb).t()  # n x B
    logits_per_text = scale * text_emb @ gather(image_emb).t()  # n x B
    labels = offset + torch.arange(len(image_emb), device=image_emb.device)
    loss = 0.5 * (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels))
    return loss, logits_per_image


class _TinyTextTower(nn.Module):
    """A from-scratch BERT encoder with mean pooling over the real tokens."""

    def __init__(self, cfg: TinyTextConfig, tokenizer):
        super().__init__()
        import transformers

        bert = transformers.BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=cfg.hidden_size,
                                       num_hidden_layers=cfg.num_hidden_layers,
                                       num_attention_heads=cfg.num_attention_heads,
                                       intermediate_size=cfg.intermediate_size,
                                       max_position_embeddings=cfg.max_position_embeddings)
        self.model = transformers.BertModel(bert, add_pooling_layer=False)
        self.tokenizer = tokenizer
        self.max_length = cfg.max_position_embeddings

    def tokenize(self, texts: list[str]) -> dict:
        return self.tokenizer([str(t).strip() for t in texts], padding=True, truncation=True,
                              max_length=self.max_length, return_tensors="pt")

    def forward_tokens(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        """Token ids -> pooled features (B, H): the traceable part (ONNX export)."""
        tokens = self.model(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids)[0]  # (B, T, H)
        w = attention_mask.unsqueeze(-1).to(tokens.dtype)  # (B, T, 1)
        return (tokens * w).sum(1) / w.sum(1).clamp_min(1e-9)  # (B, H)

    def forward(self, texts: list[str]) -> torch.Tensor:
        device = self.model.embeddings.word_embeddings.weight.device
        tok = {k: v.to(device) for k, v in self.tokenize(texts).items()}
        return self.forward_tokens(tok["input_ids"], tok["attention_mask"], tok.get("token_type_ids"))


class _MiniLMTower(nn.Module):
    """MiniLM's sentence embedding (mean-pooled, L2-normalised), as sentence-transformers gives it."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder  # engine.models.builders.SentenceEncoder

    @property
    def max_length(self) -> int:
        return self.encoder.max_seq_length

    def tokenize(self, texts: list[str]) -> dict:
        return self.encoder.tokenize(list(texts))

    def forward_tokens(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        return self.encoder(input_ids, attention_mask, token_type_ids)

    def forward(self, texts: list[str]) -> torch.Tensor:
        device = next(self.encoder.parameters()).device
        batch = {k: v.to(device) for k, v in self.tokenize(texts).items()}
        return self.encoder(**batch)


class LiT(HoldsLocked):
    """encode_image(N×1×28×28 normalised) and encode_text(list[str]) -> L2-normalised (N, D)."""

    def __init__(self, cfg: LiTConfig, text_tower: nn.Module | None):
        super().__init__()
        from engine.models.vit import ViTConfig, build_vit

        self.config = cfg
        vcfg = ViTConfig.from_dict({**cfg.vision, "num_classes": 0})
        self.vit_config = vcfg
        self.visual = build_vit(vcfg)  # pooled [CLS] features, (N, embed_dim of the ViT)
        self.image_proj = nn.Linear(vcfg.embed_dim, cfg.embed_dim, bias=False)
        self.text_proj = nn.Linear(cfg.text_dim, cfg.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))
        # A locked tower is neither trained nor saved (its weights come from its package).
        self.text = None if text_tower is None or cfg.lock_text else text_tower
        if text_tower is not None and cfg.lock_text:
            self.lock(text_tower)

    @property
    def text_tower(self) -> nn.Module | None:
        return self._locked[0] if self._locked else self.text

    # ------------------------------------------------------------------ the two encoders
    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_proj(self.visual(x)), dim=-1)

    def text_features(self, texts: list[str]) -> torch.Tensor:
        """The text tower's pooled features (N, text_dim), before the projection."""
        tower = self.text_tower
        if tower is None:
            raise ModelError("this CLIP model was loaded without its text tower")
        if self._locked:
            with torch.no_grad():
                return tower(list(texts)).float()
        return tower(list(texts)).float()

    def encode_text_features(self, feats: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_proj(feats), dim=-1)

    def encode_text(self, texts: list[str] | str) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        return self.encode_text_features(self.text_features(texts))

    def forward(self, images: torch.Tensor, texts: list[str]):
        """(logits_per_image, logits_per_text), as open_clip's CLIP returns them."""
        img, txt = self.encode_image(images), self.encode_text(texts)
        scale = self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
        logits = scale * img @ txt.t()  # N x M
        return logits, logits.t()


# ---------------------------------------------------------------------------- building
def minilm_tokenizer():
    import transformers

    from engine.models.text import minilm_path

    return transformers.AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)


def build_text_tower(cfg: LiTConfig) -> nn.Module:
    if cfg.text_tower == "minilm":
        from engine.models.locked import build_minilm

        return _MiniLMTower(build_minilm())
    if cfg.text_tower == "tiny":
        return _TinyTextTower(TinyTextConfig(**cfg.tiny_text), minilm_tokenizer())
    raise ModelError(f"unknown text tower {cfg.text_tower!r}; choose one of {', '.join(TEXT_TOWERS)}")


def build_lit(cfg: LiTConfig) -> LiT:
    """A fresh model (random image tower and projections; MiniLM pretrained when chosen)."""
    return LiT(cfg, build_text_tower(cfg))


def load_lit(weights: str | Path) -> LiT:
    """The model described by the card beside `weights`, with those weights, in eval mode."""
    from engine.models.builders import load_from_card

    return load_from_card(weights, LiTConfig.from_dict, build_lit, "CLIP model_config")


@register_builder("lit")
def build_from_run(entry, path):
    """Catalogue builder for CLIP/LiT runs trained in the app, and (as build_from_resources)
    for the built-in CLIP/LiT under resources/checkpoints/."""
    return load_lit(path)


build_from_resources = build_from_run
