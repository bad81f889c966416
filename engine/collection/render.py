"""The photo map as a PNG, without Qt (the headless `map --out`): a dot per photo coloured by
cluster, thumbnails instead of dots for small folders, each cluster's name at its middle."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.errors import BadImageError
from engine.images import open_image

#: Cluster colours (Tableau 10, then 6 more): the GUI map uses the same list.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf")
THUMBS_UP_TO = 300  # photos drawn as thumbnails up to this many; dots beyond
THUMB = 64


def render_map(paths, xy: np.ndarray, cluster: np.ndarray, labels, size=(1280, 960)) -> np.ndarray:
    """H x W x 3 uint8."""
    w, h = size
    margin = THUMB
    canvas = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(canvas)
    px = np.column_stack([margin + (xy[:, 0] + 1) / 2 * (w - 2 * margin),
                          margin + (1 - (xy[:, 1] + 1) / 2) * (h - 2 * margin)])  # y up, as on a plot
    thumbs = len(paths) <= THUMBS_UP_TO
    for path, (x, y), c in zip(paths, px, cluster):
        colour = PALETTE[int(c) % len(PALETTE)]
        if thumbs and _paste_thumb(canvas, path, x, y, colour):
            continue
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
    font = ImageFont.load_default(size=16)
    for c, label in enumerate(labels):
        members = px[cluster == c]
        if not label or not len(members):
            continue
        x, y = label_anchor(members)
        box = draw.textbbox((x, y), label, font=font, anchor="mm")
        draw.rectangle((box[0] - 4, box[1] - 3, box[2] + 4, box[3] + 3), fill="white",
                       outline=PALETTE[c % len(PALETTE)], width=2)
        draw.text((x, y), label, fill="black", font=font, anchor="mm")
    return np.asarray(canvas)


def label_anchor(points: np.ndarray) -> np.ndarray:
    """Where a cluster's name goes: on the member nearest the cluster's median, so that a cluster
    split across the map (k-means runs in embedding space, not on the map) names one of its own."""
    return points[np.argmin(((points - np.median(points, axis=0)) ** 2).sum(1))]


def _paste_thumb(canvas: Image.Image, path: str, x: float, y: float, colour: str) -> bool:
    try:
        img = open_image(path, draft=(THUMB, THUMB))
    except BadImageError:
        return False
    img.thumbnail((THUMB, THUMB))
    framed = Image.new("RGB", (img.width + 4, img.height + 4), colour)  # the frame says the cluster
    framed.paste(img, (2, 2))
    canvas.paste(framed, (int(x - framed.width / 2), int(y - framed.height / 2)))
    return True
