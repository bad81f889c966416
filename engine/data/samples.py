"""Real Fashion-MNIST test images as sample PNGs for the panels (Attention, MAE).

The first test image of each class, written once as a 28×28 PNG to Patchwork's cache, so the
built-in Fashion-MNIST models can be tried on exactly the kind of image they were trained and
tested on. One writer, one folder: every panel offers the same files under the same names.
"""
from __future__ import annotations


def fashion_mnist_samples(count: int = 10) -> list[tuple[str, str]]:
    """[(png path, caption)]; empty when Fashion-MNIST is not on this machine."""
    from PIL import Image

    from engine.data import fashion_mnist
    from engine.paths import cache_dir

    if not fashion_mnist.is_available():
        return []
    test = fashion_mnist.load_fashion_mnist("test")
    folder = cache_dir() / "samples" / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for label, name in enumerate(test.classes[:count]):
        index = int((test.labels == label).argmax())
        path = folder / f"test-{index:05d}.png"
        if not path.is_file():
            tmp = path.with_suffix(".part.png")
            Image.fromarray(test.images[index]).save(tmp)
            tmp.replace(path)  # atomic: another panel may be writing the same sample
        out.append((str(path), name.split("/")[0].lower()))
    return out
