"""The gallery: every generated image is a PNG in the data folder that carries its own recipe.

The parameters (prompt, seed, steps, guidance, model, prior...) are stored as JSON in a
PNG text chunk ("patchwork:params"; the prompt also goes into the standard "Description"
chunk), so a PNG dragged back into the panel restores them, and any other program still
sees an ordinary image. Favourites are a small JSON list beside the images.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from engine.errors import PatchworkError
from engine.paths import data_dir, ensure

PARAMS_KEY = "patchwork:params"
FAVOURITES = "favourites.json"


class GalleryError(PatchworkError):
    """A gallery file that cannot be read, written or restored."""


@dataclass(frozen=True)
class GalleryItem:
    path: str
    params: dict
    favourite: bool
    created: float  # file modification time (seconds since the epoch)


def gallery_dir() -> Path:
    return data_dir() / "generated"


def _slug(text: str, limit: int = 40) -> str:
    return (re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "image")[:limit].rstrip("-")


def save_png(pixels: np.ndarray, params: dict, folder: str | os.PathLike | None = None) -> Path:
    """Write `pixels` ((H, W) or (H, W, 3) uint8) as a PNG with `params` in a text chunk.

    The file appears complete or not at all (written to a temporary name, then renamed).
    """
    folder = ensure(Path(folder) if folder else gallery_dir())
    a = np.ascontiguousarray(pixels)
    if a.dtype != np.uint8 or a.ndim not in (2, 3):
        raise GalleryError(f"expected (H, W) or (H, W, 3) uint8 pixels, got {a.dtype} {a.shape}")
    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMS_KEY, json.dumps(params, sort_keys=True))
    if params.get("prompt"):
        info.add_text("Description", str(params["prompt"]))
    info.add_text("Software", "Patchwork")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}-{_slug(str(params.get('prompt') or params.get('kind') or 'image'))}-s{params.get('seed', 0)}"
    path = folder / f"{name}.png"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{name}-{n}.png"
    tmp = path.with_name(f".tmp-{path.name}")
    Image.fromarray(a).save(tmp, format="PNG", pnginfo=info)
    os.replace(tmp, path)
    return path


def read_params(path: str | os.PathLike) -> dict:
    """The parameters a Patchwork PNG was generated with (GalleryError when it has none)."""
    p = Path(path)
    try:
        with Image.open(p) as img:
            img.load()
            text = dict(getattr(img, "text", {}) or {})
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise GalleryError(f"{p.name}: cannot read this image ({exc})") from None
    raw = text.get(PARAMS_KEY)
    if raw is None:
        raise GalleryError(f"{p.name} carries no Patchwork generation parameters "
                           f"(only PNGs saved by the Generate panel do)")
    try:
        params = json.loads(raw)
    except ValueError:
        raise GalleryError(f"{p.name}: its generation parameters are not valid JSON") from None
    if not isinstance(params, dict):
        raise GalleryError(f"{p.name}: its generation parameters are not a JSON object")
    return params


def _favourites_path(folder: Path) -> Path:
    return folder / FAVOURITES


def favourites(folder: str | os.PathLike | None = None) -> set[str]:
    folder = Path(folder) if folder else gallery_dir()
    try:
        names = json.loads(_favourites_path(folder).read_text(encoding="utf-8"))
        return {str(n) for n in names} if isinstance(names, list) else set()
    except (OSError, ValueError):
        return set()


def _write_favourites(folder: Path, names: set[str]) -> None:
    path = _favourites_path(ensure(folder))
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_text(json.dumps(sorted(names), indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _inside(path: str | os.PathLike, folder: Path) -> Path:
    p = Path(path).resolve()
    if p.parent != folder.resolve():
        raise GalleryError(f"{p.name} is not in the gallery folder {folder}")
    return p


def set_favourite(path: str | os.PathLike, value: bool, folder: str | os.PathLike | None = None) -> bool:
    folder = Path(folder) if folder else gallery_dir()
    p = _inside(path, folder)
    names = favourites(folder)
    (names.add if value else names.discard)(p.name)
    _write_favourites(folder, names)
    return value


def delete(path: str | os.PathLike, folder: str | os.PathLike | None = None) -> None:
    folder = Path(folder) if folder else gallery_dir()
    p = _inside(path, folder)
    if p.suffix.lower() != ".png":
        raise GalleryError(f"{p.name}: only gallery PNGs can be deleted here")
    p.unlink(missing_ok=True)
    names = favourites(folder)
    if p.name in names:
        names.discard(p.name)
        _write_favourites(folder, names)


def list_items(folder: str | os.PathLike | None = None, favourites_only: bool = False,
               limit: int = 500) -> list[GalleryItem]:
    """Gallery PNGs, newest first; files without parameters are listed with empty ones."""
    folder = Path(folder) if folder else gallery_dir()
    if not folder.is_dir():
        return []
    favs = favourites(folder)
    files = sorted((p for p in folder.glob("*.png") if not p.name.startswith(".tmp-")),
                   key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    out = []
    for p in files:
        if favourites_only and p.name not in favs:
            continue
        try:
            params = read_params(p)
        except GalleryError:
            params = {}
        out.append(GalleryItem(str(p), params, p.name in favs, p.stat().st_mtime))
        if len(out) >= limit:
            break
    return out


def save_gif(frames: list[np.ndarray], path: str | os.PathLike, scale: int = 4, frame_ms: int = 120,
             bounce: bool = True) -> Path:
    """An animated GIF of `frames` (uint8, (H, W) or (H, W, 3)), enlarged `scale`× and played
    forth and back (bounce) in a loop."""
    if not frames:
        raise GalleryError("no frames to write")
    images = []
    for f in frames:
        img = Image.fromarray(np.ascontiguousarray(f))
        if scale > 1:
            img = img.resize((img.width * scale, img.height * scale), Image.Resampling.LANCZOS)
        images.append(img.convert("P", palette=Image.Palette.ADAPTIVE) if img.mode == "RGB" else img)
    if bounce and len(images) > 2:
        images = images + images[-2:0:-1]
    p = Path(path)
    ensure(p.parent)
    tmp = p.with_name(f".tmp-{p.name}")
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    os.replace(tmp, p)
    return p
