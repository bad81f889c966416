"""The libraries' standard caches, located the way the libraries themselves locate them.

No imports of torch or huggingface_hub: these are plain path rules, so checking whether
a model is already on disk costs a few stat calls and never touches the network.
"""
from __future__ import annotations

import os
from pathlib import Path


def _xdg_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def torch_hub_dir() -> Path:
    """torch.hub.get_dir(): $TORCH_HOME/hub, default ~/.cache/torch/hub."""
    torch_home = os.environ.get("TORCH_HOME") or _xdg_cache() / "torch"
    return Path(torch_home).expanduser() / "hub"


def torch_checkpoints_dir() -> Path:
    """Where torchvision/timm URL weights live (torch.hub.load_state_dict_from_url)."""
    return torch_hub_dir() / "checkpoints"


def hf_hub_cache() -> Path:
    """huggingface_hub's cache: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    hf_home = os.environ.get("HF_HOME") or _xdg_cache() / "huggingface"
    return Path(hf_home).expanduser() / "hub"


def hf_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hf_offline() -> bool:
    """HF_HUB_OFFLINE (or the older TRANSFORMERS_OFFLINE) forbids any hub request."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hf_repo_dir(repo_id: str) -> Path:
    """models--org--name inside the HF cache."""
    return hf_hub_cache() / ("models--" + repo_id.replace("/", "--"))


def hf_cached_file(repo_id: str, filename: str, revision: str = "main") -> Path | None:
    """The snapshot path of a cached file, or None (same rule as try_to_load_from_cache)."""
    repo = hf_repo_dir(repo_id)
    ref = repo / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    path = repo / "snapshots" / commit / filename
    return path if path.is_file() else None


def hf_cached_snapshot(repo_id: str, revision: str = "main") -> Path | None:
    """The snapshot folder of a cached repo revision, or None."""
    repo = hf_repo_dir(repo_id)
    ref = repo / "refs" / revision
    if not ref.is_file():
        return None
    snap = repo / "snapshots" / ref.read_text().strip()
    return snap if snap.is_dir() else None
