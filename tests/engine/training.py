"""What the training tests share: driving a training generator, one intra-op thread, and a
generated class-folder dataset of small noisy stripes, bars and checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def drive(gen, stop_after_step: int | None = None):
    """Run a training generator; returns (result or None, partial payloads). With
    `stop_after_step`, closes it (what the engine's cancel does) once that step is logged."""
    partials = []
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return stop.value, partials
        if hasattr(item, "value"):
            partials.append(item.value)
            if stop_after_step is not None and item.value.get("kind") == "train" \
                    and item.value["step"] >= stop_after_step:
                gen.close()
                return None, partials


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: these models are tiny, and on a shared CPU more threads only wait.
    Import it into a test module to use it there."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_shapes(root: Path, per_class: int, seed: int) -> str:
    """Class folders stripes/, bars/, checks/ of `per_class` noisy 16×16 images each, under `root`."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:16, 0:16]
    patterns = {"stripes": (yy // 2) % 2, "bars": (xx // 2) % 2, "checks": ((yy // 4) + (xx // 4)) % 2}
    for name, pattern in patterns.items():
        (root / name).mkdir()
        for i in range(per_class):
            img = pattern * 180 + rng.integers(0, 60, (16, 16))
            Image.fromarray(img.astype(np.uint8)).save(root / name / f"{i}.png")
    return str(root)
