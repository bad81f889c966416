"""Decoding user images safely: every failure becomes a BadImageError with a reason.

Formats: JPEG, PNG, WebP, BMP, TIFF, GIF (first frame), HEIC/HEIF (pillow-heif).
EXIF orientation is applied. Sizes are checked from the header *before* decoding,
so a decompression bomb is refused without allocating its pixels.
"""
from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import BadImageError

#: Refuse images above this many pixels (a 30,000 x 30,000 bomb is 900 MP).
MAX_PIXELS = 150_000_000
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic", ".heif")

_heif_registered = False


def _register_heif() -> None:
    global _heif_registered
    if not _heif_registered:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
        except ImportError:  # optional at run time; HEIC files then fail with a clear reason
            pass
        _heif_registered = True


def open_image(path: str | os.PathLike, *, draft: tuple[int, int] | None = None,
               data: bytes | None = None) -> Image.Image:
    """Decode `path` to an RGB PIL image with EXIF orientation applied.

    draft: for JPEGs, let libjpeg decode at a reduced scale that is still at
    least this size (much faster for big photos fed to a 224-pixel model).
    data: the file's bytes when the caller has read them already (indexing hashes them).
    """
    _register_heif()
    p = str(path)
    try:
        size = len(data) if data is not None else os.path.getsize(p)
    except FileNotFoundError:
        raise BadImageError(p, "file not found") from None
    except OSError as exc:
        raise BadImageError(p, f"unreadable ({exc.strerror or exc})") from None
    if data is None and os.path.isdir(p):
        raise BadImageError(p, "is a folder, not an image")
    if size == 0:
        raise BadImageError(p, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own MAX_PIXELS check below is the limit; Pillow's warning at 89 MP would
            # refuse ordinary 100 MP camera photos. (Pillow's hard error stays above 179 MP.)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data) if data is not None else p)
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise BadImageError(
                    p, f"too large: {w}×{h} = {w * h / 1e6:.0f} megapixels exceeds the "
                       f"{MAX_PIXELS / 1e6:.0f} MP limit (possible decompression bomb); not decoded")
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)  # animated GIF/WebP/TIFF: the first frame
            if draft is not None and img.format == "JPEG":
                img.draft("RGB", draft)
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except BadImageError:
        raise
    except UnidentifiedImageError:
        raise BadImageError(p, "not an image, or a format Patchwork cannot read") from None
    except Image.DecompressionBombError as exc:
        # Pillow refuses > 179 MP inside Image.open, before our own check can run.
        m = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(m.group(1)) / 1e6:.0f} megapixels" if m else "its pixel count"
        raise BadImageError(p, f"too large: {size} exceeds the {MAX_PIXELS / 1e6:.0f} MP limit "
                               "(possible decompression bomb); not decoded") from None
    except PermissionError:
        raise BadImageError(p, "unreadable (permission denied)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc)
        if "truncated" in text or isinstance(exc, EOFError):
            raise BadImageError(p, f"truncated or incomplete file ({text or 'unexpected end of data'})") from None
        raise BadImageError(p, f"corrupt image data ({text or type(exc).__name__})") from None
    except MemoryError:
        raise BadImageError(p, "not enough memory to decode this image") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, compositing transparency over white (what a viewer would show)."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.getchannel("A"))
        return bg
    if img.mode == "I;16" or img.mode == "I":
        arr = np.asarray(img, dtype=np.float32)
        arr = (255 * (arr - arr.min()) / max(1.0, float(arr.max() - arr.min()))).astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")
    return img.convert("RGB")


def preview_array(img: Image.Image, max_side: int = 1024) -> np.ndarray:
    """A display copy (H, W, 3) uint8, at most `max_side` pixels on its long side."""
    if max(img.size) > max_side:
        img = img.copy()
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in SUFFIXES
