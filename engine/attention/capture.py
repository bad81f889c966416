"""The capturing path: attention recomputed explicitly from each block's own q, k, v weights.

Plain classification keeps the libraries' fused scaled-dot-product attention (timm's
`fused_attn`, PyTorch's fast MultiheadAttention path), which never materialises the
attention matrix: hooks on it see nothing (the reason vit-explain silently breaks on timm,
vit-explain #23). While `capturing(...)` is active, and only then, each listed attention
module's `forward` is replaced on that instance by an explicit softmax(q·kᵀ/√d)·v with the
same weights, which records:

* `attn[l]`  (B, H, N, N): the softmax probabilities of block l (every row sums to 1);
* `inputs[l]` (B, N, D): the tokens entering block l's attention (after its LayerNorm),
  the layer Grad-CAM/EigenCAM read on a ViT.

With `keep_graph=True` the recorded tensors stay in the autograd graph, so gradients of a
class score with respect to them can be taken. Leaving the context restores the modules.
The two paths give the same logits to float32 rounding (tests/engine/test_attention.py).
"""
from __future__ import annotations

import types
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ModelError


@dataclass
class Recorder:
    keep_graph: bool = False
    attn: list = field(default_factory=list)  # per block: (B, H, N, N)
    inputs: list = field(default_factory=list)  # per block: (B, N, D)

    def record(self, x: torch.Tensor, attn: torch.Tensor) -> None:
        if self.keep_graph:
            self.inputs.append(x)
            self.attn.append(attn)
        else:
            self.inputs.append(x.detach())
            self.attn.append(attn.detach())


def _softmax_attention(q, k, attn_mask=None, scale=None):
    """(B, H, N, d) queries and keys -> (B, H, N, N) probabilities, SDPA's mask semantics."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = (q * scale) @ k.transpose(-2, -1)  # (B, H, N, N)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:  # True = may attend
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    return scores.softmax(dim=-1)


# ---------------------------------------------------------------------------- timm Attention
def _timm_forward(rec: Recorder):
    def forward(self, x, attn_mask=None, is_causal=False):
        if is_causal:
            n = x.shape[1]
            attn_mask = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        b, n, _ = x.shape  # B, N, D
        gate = self.gate(x).sigmoid() if getattr(self, "gate", None) is not None else None
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, H, N, d)
        q, k, v = qkv.unbind(0)  # each (B, H, N, d)
        q, k = self.q_norm(q), self.k_norm(k)
        attn = _softmax_attention(q, k, attn_mask, self.scale)  # (B, H, N, N)
        rec.record(x, attn)
        out = self.attn_drop(attn) @ v  # (B, H, N, d)
        out = out.transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim)  # (B, N, H·d)
        out = self.norm(out) if hasattr(self, "norm") else out
        if gate is not None:
            out = out * gate
        return self.proj_drop(self.proj(out))

    return forward


def _is_plain_timm_attention(m: nn.Module) -> bool:
    try:
        from timm.models.vision_transformer import Attention
    except ImportError:
        return False
    # subclasses that change the maths (rotary embeddings, ...) override forward
    return isinstance(m, Attention) and type(m).forward is Attention.forward


# ---------------------------------------------------------------------------- torch MultiheadAttention
def _mha_forward(rec: Recorder):
    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if not (query is key and key is value):
            raise ModelError("attention maps need self-attention (the same tokens as query, key and value)")
        x = query if self.batch_first else query.transpose(0, 1)  # (B, N, E)
        b, n, e = x.shape
        heads, d = self.num_heads, e // self.num_heads
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)  # (B, N, 3E)
        q, k, v = qkv.reshape(b, n, 3, heads, d).permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, N, d)
        mask = None
        if attn_mask is not None:
            # nn.MultiheadAttention: bool True = NOT allowed; float is added
            mask = ~attn_mask if attn_mask.dtype == torch.bool else attn_mask
            if mask.dim() == 3:  # (B·H, N, N)
                mask = mask.reshape(b, heads, n, n)
        if key_padding_mask is not None:
            pad = key_padding_mask.reshape(b, 1, 1, n)
            pad = ~pad if pad.dtype == torch.bool else pad
            mask = pad if mask is None else (mask & pad if mask.dtype == torch.bool else mask + pad)
        if is_causal and mask is None:
            mask = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        attn = _softmax_attention(q, k, mask)  # (B, H, N, N)
        rec.record(x, attn)
        drop = F.dropout(attn, self.dropout, self.training) if self.dropout else attn
        out = (drop @ v).transpose(1, 2).reshape(b, n, e)  # (B, N, E)
        out = self.out_proj(out)
        if not self.batch_first:
            out = out.transpose(0, 1)  # (N, B, E)
        weights = None
        if need_weights:
            weights = attn.mean(dim=1) if average_attn_weights else attn
        return out, weights

    return forward


def _is_plain_mha(m: nn.Module) -> bool:
    return (isinstance(m, nn.MultiheadAttention) and m._qkv_same_embed_dim and m.bias_k is None
            and not m.add_zero_attn and m.in_proj_weight is not None)


def explicit_forward(m: nn.Module, rec: Recorder):
    if _is_plain_timm_attention(m):
        return _timm_forward(rec)
    if _is_plain_mha(m):
        return _mha_forward(rec)
    raise ModelError(f"attention maps are not supported for {type(m).__module__}.{type(m).__name__} "
                     "(supported: timm's ViT Attention and torch's MultiheadAttention)")


@contextmanager
def capturing(modules, keep_graph: bool = False):
    """Within the block, `modules` (attention layers, in block order) run the explicit path
    and record into the yielded Recorder; on exit their own forward is back."""
    modules = list(modules)
    rec = Recorder(keep_graph=keep_graph)
    patches = [(m, explicit_forward(m, rec)) for m in modules]  # fail before touching any module
    saved = []
    try:
        for m, fn in patches:
            saved.append((m, m.__dict__.get("forward")))
            m.forward = types.MethodType(fn, m)
        yield rec
    finally:
        for m, old in saved:
            if old is None:
                del m.forward
            else:
                m.forward = old
