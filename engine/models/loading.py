"""Reading weight files: the only way Patchwork turns a file on disk into tensors.

Two formats are read, and neither runs code from the file:

* ``.safetensors`` (plain tensors by design), via ``safetensors.torch.load_file``;
* PyTorch pickles (``.pt .pth .bin .ckpt .tar``) via ``torch.load(weights_only=True)``,
  whose restricted unpickler only rebuilds tensors, containers and numbers, and refuses
  any other Python object *before* creating it.

Training checkpoints are unwrapped to the model's state dict (``{"model": ...}``,
``{"state_dict": ...}``, DDP's ``module.`` prefix...). TorchScript archives (OpenAI's
original CLIP ``.pt`` files) are refused: loading them means running their code.
"""
from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

from engine.errors import ModelError, reason

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")

#: Keys under which training scripts store the model's weights, tried in this order.
CONTAINER_KEYS = ("state_dict", "model", "model_state_dict", "module", "net", "network")
#: Prefixes wrappers add to every key: DistributedDataParallel / DataParallel, torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")

PICKLED_CODE = ("{name} contains pickled Python objects that could run code; Patchwork only loads plain "
                "tensors (safetensors or weights_only). Re-save it as safetensors.")


def load_state_dict(path) -> dict:
    """The tensors of the weights file at `path`, as a flat ``{name: tensor}`` dict on the CPU.

    Raises ModelError for missing or unreadable files, TorchScript archives, pickles that
    would need to run code, and files that hold no tensors at all.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ModelError(f"{path}: no such weights file")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        raw = _load_safetensors(path)
    elif suffix in PICKLE_SUFFIXES:
        raw = _load_pickle(path)
    else:
        raise ModelError(f"{name}: unsupported weights format {suffix or '(no suffix)'!r}; "
                         f"use .safetensors or a PyTorch state dict ({', '.join(PICKLE_SUFFIXES)})")
    state = unwrap_state_dict(raw)
    if not state:
        raise ModelError(f"{name} holds no weight tensors")
    return state


def unwrap_state_dict(obj) -> dict:
    """The model weights inside a loaded checkpoint: containers unwrapped, prefixes stripped,
    non-tensor values (epoch counters, optimizer hyper-parameters...) dropped."""
    import torch

    while isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        return {}
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    for prefix in WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def is_torchscript_archive(path) -> bool:
    """True for a TorchScript zip (``torch.jit.save``): it carries ``constants.pkl`` or ``code/``."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def _load_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path.name} is not a readable safetensors file: {exc}") from None


def _load_pickle(path: Path) -> object:
    import argparse
    import pickle

    import torch

    if is_torchscript_archive(path):
        raise ModelError(
            f"{path.name} is a TorchScript archive (like OpenAI's original CLIP .pt files). Loading one runs "
            "the code inside it, so Patchwork does not. Use the model's safetensors weights instead, e.g. "
            "open_clip_model.safetensors from its Hugging Face repository (timm/vit_base_patch32_clip_224.openai "
            "for OpenAI's ViT-B/32).")
    try:
        # argparse.Namespace is plain data (attributes set from a dict, no code runs), and training
        # scripts such as MAE's save their command line with the weights.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ModelError(PICKLED_CODE.format(name=path.name)) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path.name} is not a readable PyTorch weights file: {reason(exc)}") from None
