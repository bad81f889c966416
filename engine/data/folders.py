"""Image datasets from folders, the way people already keep them.

* class folders (the Teachable Machine / Lobe convention): root/<class name>/<images>
* an unlabelled folder: every image below root (for self-supervised recipes)
* image-caption pairs: a .txt beside each image (same stem), or a CSV with path,caption

Scanning only lists files; `decode_images` decodes them through engine.images.open_image
at the training size. A file that cannot be used is skipped and listed with its reason;
it never stops the run.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from engine.errors import BadImageError, PatchworkError
from engine.images import is_image_path, open_image

#: Files that are never images and never worth a warning.
_QUIET = {".txt", ".csv", ".json", ".md", ".db", ".ini"}


@dataclass(frozen=True)
class ImageItem:
    path: str
    label: int | None = None
    caption: str | None = None


@dataclass
class FolderScan:
    """What a folder holds: usable-looking files and the ones already refused (path, reason)."""

    kind: str  # "classes" | "unlabelled" | "captions"
    root: str
    items: list[ImageItem]
    classes: tuple[str, ...] = ()
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class DecodedImages:
    """images: (N, S, S) uint8 when grayscale, else (N, S, S, 3); labels -1 when unlabelled."""

    images: np.ndarray
    labels: np.ndarray
    captions: list[str | None]
    paths: list[str]
    classes: tuple[str, ...]
    skipped: list[tuple[str, str]]

    def __len__(self) -> int:
        return len(self.paths)


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__")


def _files(folder: Path, recursive: bool) -> Iterator[Path]:
    it = folder.rglob("*") if recursive else folder.iterdir()
    for p in sorted(it):
        if p.is_file() and not any(_hidden(part) for part in p.relative_to(folder).parts):
            yield p


def _check_root(root: str | os.PathLike) -> Path:
    r = Path(root)
    if not r.is_dir():
        raise PatchworkError(f"{r}: not a folder")
    return r


def _image_or_skip(p: Path, skipped: list[tuple[str, str]]) -> bool:
    if is_image_path(p):
        return True
    if p.suffix.lower() not in _QUIET:
        skipped.append((str(p), f"not an image file ({p.suffix or 'no extension'})"))
    return False


def scan_class_folders(root: str | os.PathLike) -> FolderScan:
    """root/<class>/<image>: class names are the sub-folder names, in sorted order."""
    r = _check_root(root)
    classes = tuple(sorted(d.name for d in r.iterdir() if d.is_dir() and not _hidden(d.name)))
    if not classes:
        raise PatchworkError(f"{r}: no class folders inside (expected {r}/<class name>/<images>)")
    items, skipped = [], []
    for label, name in enumerate(classes):
        for p in _files(r / name, recursive=True):
            if _image_or_skip(p, skipped):
                items.append(ImageItem(str(p), label))
    for p in r.iterdir():
        if p.is_file() and not _hidden(p.name) and is_image_path(p):
            skipped.append((str(p), "image outside any class folder"))
    if not items:
        raise PatchworkError(f"{r}: the class folders hold no images")
    return FolderScan("classes", str(r), items, classes, skipped)


def scan_unlabelled(root: str | os.PathLike) -> FolderScan:
    """Every image below root, recursively."""
    r = _check_root(root)
    items, skipped = [], []
    for p in _files(r, recursive=True):
        if _image_or_skip(p, skipped):
            items.append(ImageItem(str(p)))
    if not items:
        raise PatchworkError(f"{r}: no images inside")
    return FolderScan("unlabelled", str(r), items, (), skipped)


def scan_captioned(source: str | os.PathLike) -> FolderScan:
    """Image-caption pairs: a folder with IMAGE.txt beside each image, or a CSV file (path,caption).

    CSV paths are relative to the CSV's folder. Images without a caption are skipped.
    """
    s = Path(source)
    items, skipped = [], []
    if s.is_file() and s.suffix.lower() == ".csv":
        base = s.parent
        try:
            with open(s, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise PatchworkError(f"{s}: cannot read this CSV ({exc})") from None
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "caption"]:
            rows = rows[1:]
        for n, row in enumerate(rows, start=2):
            if len(row) < 2 or not row[0].strip():
                skipped.append((f"{s}:{n}", "row without path and caption"))
                continue
            p = Path(row[0].strip())
            p = p if p.is_absolute() else base / p
            if not row[1].strip():
                skipped.append((str(p), "empty caption"))
            elif _image_or_skip(p, skipped):
                items.append(ImageItem(str(p), None, row[1].strip()))
    else:
        r = _check_root(s)
        for p in _files(r, recursive=True):
            if not _image_or_skip(p, skipped):
                continue
            txt = p.with_suffix(".txt")
            try:
                caption = txt.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                skipped.append((str(p), f"no caption file ({txt.name})"))
                continue
            except (OSError, UnicodeDecodeError) as exc:
                skipped.append((str(p), f"unreadable caption file ({exc})"))
                continue
            if not caption:
                skipped.append((str(p), "empty caption"))
            else:
                items.append(ImageItem(str(p), None, caption))
    if not items:
        raise PatchworkError(f"{s}: no image-caption pairs found")
    return FolderScan("captions", str(s), items, (), skipped)


def resize_crop(img, size: int):
    """Resize the short side to `size` (bilinear) and centre-crop a size×size square.

    The same geometry as engine.classify.preprocess with resize == input_size, so what a
    model was trained on matches what it is shown later.
    """
    from PIL import Image

    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def decode_images(scan: FolderScan, size: int, grayscale: bool = False,
                  ) -> Iterator[tuple[int, int]]:
    """Generator: decodes every item, yielding (done, total); returns DecodedImages.

    Use `data = yield from decode_images(...)` inside a job, or `load_images` outside one.
    """
    images, labels, captions, paths = [], [], [], []
    skipped = list(scan.skipped)
    total = len(scan.items)
    for i, item in enumerate(scan.items):
        try:
            img = open_image(item.path, draft=(size, size))
        except BadImageError as exc:
            skipped.append((exc.path, exc.reason))
        else:
            img = resize_crop(img.convert("L") if grayscale else img, size)
            images.append(np.asarray(img, dtype=np.uint8))
            labels.append(-1 if item.label is None else item.label)
            captions.append(item.caption)
            paths.append(item.path)
        yield i + 1, total
    if not images:
        raise PatchworkError(f"{scan.root}: none of the {total} images could be decoded "
                             f"(first problem: {skipped[0][1] if skipped else 'none'})")
    shape = (size, size) if grayscale else (size, size, 3)
    return DecodedImages(np.stack(images).reshape(-1, *shape), np.asarray(labels, dtype=np.int64),
                         captions, paths, scan.classes, skipped)


def load_images(scan: FolderScan, size: int, grayscale: bool = False) -> DecodedImages:
    """decode_images, run to the end."""
    gen = decode_images(scan, size, grayscale)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
