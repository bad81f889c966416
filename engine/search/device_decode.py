"""JPEG decoding and preprocessing on the model's device, in batches (GPU indexing).

On a GPU the model outruns CPU decoding of big photos, so the index job hands the device the
JPEG bytes: torchvision.io.decode_jpeg(list, device=...) decodes a whole batch (nvJPEG on
CUDA), and the resize of the short side, centre crop and normalisation run there too, as
engine/preprocess.py's to_input does on the CPU. Anything the device decoder does not take
(PNG, HEIC, CMYK or damaged JPEGs, photos over the pixel limit) returns None and is decoded on
the CPU by the caller, which also gives the one-line reason for a bad file.

The same code runs with device="cpu" (torchvision's libjpeg path), which is how it is tested
without a GPU (tests/engine/test_device_decode.py).
"""
from __future__ import annotations

import io

from engine.images import MAX_PIXELS

JPEG_MAGIC = b"\xff\xd8\xff"


def device_jpeg(data: bytes) -> bool:
    """A JPEG the device decoder may take: the right magic, RGB/greyscale, within the pixel limit."""
    if not data.startswith(JPEG_MAGIC):
        return False
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:  # the header only
            return im.format == "JPEG" and im.mode in ("RGB", "L") and im.width * im.height <= MAX_PIXELS
    except Exception:  # noqa: BLE001 - unreadable header: the CPU path says why
        return False


def decode_batch(datas: list[bytes], device) -> list:
    """uint8 C x H x W tensors on `device` (EXIF orientation applied), None where refused."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
    if not tensors:
        return []
    try:
        return list(decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True))
    except RuntimeError:  # one bad file fails the batch: decode one by one to find it
        out = []
        for t in tensors:
            try:
                out.append(decode_jpeg(t, mode=ImageReadMode.RGB, device=device, apply_exif_orientation=True))
            except RuntimeError:
                out.append(None)
        return out


def to_input_tensor(img, pp, dtype=None):
    """uint8 C x H x W on any device -> C x S x S normalised, as engine/preprocess.to_input does:
    resize the short side to pp.resize (antialiased), centre-crop pp.input_size, normalise."""
    import torch
    import torch.nn.functional as F

    x = img.float().unsqueeze(0) / 255.0
    h, w = x.shape[-2:]
    size = (int(pp.resize * h / w), pp.resize) if w <= h else (pp.resize, int(pp.resize * w / h))
    if size != (h, w):
        mode = pp.interpolation if pp.interpolation in ("bicubic", "bilinear") else "nearest"
        kwargs = {"antialias": True, "align_corners": False} if mode != "nearest" else {}
        x = F.interpolate(x, size=size, mode=mode, **kwargs).clamp_(0.0, 1.0)
    h, w = x.shape[-2:]
    s = pp.input_size
    if h < s or w < s:  # pad as CenterCrop does
        ph, pw = max(s - h, 0), max(s - w, 0)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        h, w = x.shape[-2:]
    top, left = int(round((h - s) / 2.0)), int(round((w - s) / 2.0))
    x = x[0, :, top:top + s, left:left + s]
    if pp.grayscale:
        x = (0.299 * x[0:1] + 0.587 * x[1:2] + 0.114 * x[2:3])
    c = x.shape[0]
    mean = torch.tensor(pp.mean[:c], device=x.device).view(c, 1, 1)
    std = torch.tensor(pp.std[:c], device=x.device).view(c, 1, 1)
    x = (x - mean) / std
    return x if dtype is None else x.to(dtype)


def prepare_batch(datas: list[bytes], device, pp, dtype=None) -> list:
    """Model inputs (C x S x S on `device`) for each JPEG's bytes, None for the CPU to decode."""
    ok = [i for i, d in enumerate(datas) if device_jpeg(d)]
    decoded = decode_batch([datas[i] for i in ok], device)
    out: list = [None] * len(datas)
    for i, img in zip(ok, decoded):
        if img is not None:
            out[i] = to_input_tensor(img, pp, dtype)
    return out
