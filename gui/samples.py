"""The sample photos scikit-image ships, found at run time without importing skimage.

If scikit-image is not installed the list is empty and the sample strip hides.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

#: (file name, caption) in the order shown; each is a real photograph.
SAMPLES = (
    ("coffee.png", "coffee"),
    ("chelsea.png", "chelsea (cat)"),
    ("astronaut.png", "astronaut"),
    ("rocket.jpg", "rocket"),
    ("motorcycle_left.png", "motorcycle"),
    ("hubble_deep_field.jpg", "hubble"),
)


def sample_photos() -> list[tuple[str, str]]:
    """[(absolute path, caption)] for the samples present on this machine."""
    try:
        spec = importlib.util.find_spec("skimage")
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    return [(str(data / name), caption) for name, caption in SAMPLES if (data / name).is_file()]
