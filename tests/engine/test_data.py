"""Training data: Fashion-MNIST from the Debian package, captions, folders, seeded order."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
from PIL import Image

from engine.data import captions, fashion_mnist
from engine.data.folders import load_images, scan_captioned, scan_class_folders, scan_unlabelled
from engine.data.loader import ArrayDataset, EpochOrder, make_loader, step_generator
from engine.errors import PatchworkError

needs_fmnist = pytest.mark.skipif(
    not fashion_mnist.is_available(),
    reason="needs the real Fashion-MNIST: sudo apt install dataset-fashion-mnist, or the Train panel's Get Fashion-MNIST "
           "(files in /usr/share/datasets/fashion-mnist)")


@needs_fmnist
def test_fashion_mnist_shapes_and_labels():
    train = fashion_mnist.load_fashion_mnist("train")
    test = fashion_mnist.load_fashion_mnist("test")
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28) and test.labels.shape == (10000,)
    assert train.labels.dtype == np.int64
    assert np.bincount(train.labels).tolist() == [6000] * 10  # balanced, as published
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot" and len(train.classes) == 10
    # The published normalisation constants match the data.
    assert abs(train.images.mean() / 255 - fashion_mnist.MEAN) < 1e-3
    assert abs((train.images / 255.0).std() - fashion_mnist.STD) < 1e-3


def test_missing_dataset_names_the_package_and_the_download_option(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "nothing")
    monkeypatch.delenv("PATCHWORK_FASHION_MNIST", raising=False)
    monkeypatch.setenv("PATCHWORK_HOME", str(tmp_path / "home"))
    with pytest.raises(fashion_mnist.DatasetMissingError) as err:
        fashion_mnist.load_fashion_mnist("train")
    assert "dataset-fashion-mnist" in str(err.value) and "--download" in str(err.value)


def _idx(path, array: np.ndarray, truncate: int = 0) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as f:
        f.write(data[:len(data) - truncate])


def test_idx_files_from_any_folder_and_truncation_is_reported(tmp_path):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    for name, n in (("train", 3), ("t10k", 3)):
        _idx(tmp_path / f"{name}-images-idx3-ubyte.gz", images[:n])
        _idx(tmp_path / f"{name}-labels-idx1-ubyte.gz", np.array([0, 5, 9]))
    data = fashion_mnist.load_fashion_mnist("test", root=tmp_path)
    assert data.images.shape == (3, 28, 28) and data.labels.tolist() == [0, 5, 9]
    assert np.array_equal(data.images, images.astype(np.uint8))
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, truncate=10)
    with pytest.raises(PatchworkError, match="truncated"):
        fashion_mnist.load_fashion_mnist("test", root=tmp_path)


def test_captions_are_varied_per_class_and_deterministic_by_seed():
    assert "a photo of a sneaker." in captions.captions_for_class(7)
    assert "a photo of a running shoe." in captions.captions_for_class(7)
    assert "a photo of an ankle boot." in captions.prompts(9)
    for label in range(10):
        assert len(set(captions.captions_for_class(label))) >= 30
    labels = [i % 10 for i in range(200)]
    a = captions.sample_captions(labels, seed=1)
    assert a == captions.sample_captions(labels, seed=1)
    assert a != captions.sample_captions(labels, seed=2)
    assert len(set(a)) > 100  # not one caption per class
    for y, text in zip(labels, a):
        assert text in captions.captions_for_class(y)


def _png(path, value: int, size=(20, 24)) -> None:
    arr = np.full((size[1], size[0], 3), value, np.uint8)
    arr[::2] = 255 - value
    Image.fromarray(arr).save(path)


def test_class_folders_skip_and_list_bad_files(tmp_path):
    for name, value in (("cat", 30), ("dog", 200)):
        (tmp_path / name).mkdir()
        for i in range(3):
            _png(tmp_path / name / f"{i}.png", value + i)
    (tmp_path / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "dog" / "empty.png").write_bytes(b"")
    (tmp_path / "dog" / "notes.txt").write_text("quietly ignored")
    (tmp_path / "cat" / "report.docx").write_bytes(b"PK")
    (tmp_path / ".hidden").mkdir()
    scan = scan_class_folders(tmp_path)
    assert scan.classes == ("cat", "dog")
    data = load_images(scan, 16)
    assert data.images.shape == (6, 16, 16, 3) and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    reasons = {p.rsplit("/", 1)[-1]: r for p, r in data.skipped}
    assert set(reasons) == {"broken.jpg", "empty.png", "report.docx"}
    assert "empty" in reasons["empty.png"] and "not an image" in reasons["report.docx"]
    gray = load_images(scan, 8, grayscale=True)
    assert gray.images.shape == (6, 8, 8)


def test_unlabelled_and_captioned_folders(tmp_path):
    (tmp_path / "a").mkdir()
    _png(tmp_path / "a" / "x.png", 10)
    _png(tmp_path / "y.png", 90)
    (tmp_path / "y.txt").write_text("a striped square\n")
    (tmp_path / "a" / "x.txt").write_text("   ")  # empty caption
    assert len(scan_unlabelled(tmp_path).items) == 2
    pairs = scan_captioned(tmp_path)
    assert [(i.path.rsplit("/", 1)[-1], i.caption) for i in pairs.items] == [("y.png", "a striped square")]
    assert [r for _, r in pairs.skipped] == ["empty caption"]
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_text('path,caption\na/x.png,"dark, striped"\nmissing.png,gone\n')
    data = load_images(scan_captioned(csv_file), 12)
    assert data.captions == ["dark, striped"] and data.images.shape == (1, 12, 12, 3)
    assert any("missing.png" in p and "not found" in r for p, r in data.skipped)


def test_epoch_order_is_seeded_and_resumable():
    order = EpochOrder(n=103, batch_size=10, seed=7)
    assert order.batches_per_epoch == 10  # the last 3 samples are dropped
    full = list(order.batches(epoch=2))
    assert [b.tolist() for b in order.batches(epoch=2, start=4)] == [b.tolist() for b in full[4:]]
    assert [b.tolist() for b in EpochOrder(103, 10, seed=7).batches(2)] == [b.tolist() for b in full]
    assert full[0].tolist() != next(order.batches(epoch=3)).tolist()
    assert len(set(np.concatenate(full).tolist())) == 100
    tiny = EpochOrder(n=5, batch_size=64)
    assert [len(b) for b in tiny.batches(0)] == [5]  # smaller than a batch: one short batch
    a = step_generator(0, 5)
    b = step_generator(0, 5)
    import torch

    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))


def test_loader_follows_the_order_from_any_batch():
    x = np.arange(50, dtype=np.uint8).reshape(50, 1)
    y = np.arange(50)
    ds = ArrayDataset(x, y)
    order = EpochOrder(50, 8, seed=3)
    batches = list(make_loader(ds, 8, seed=3, epoch=1, start_batch=2))
    expected = list(order.batches(1, 2))
    assert len(batches) == len(expected) == 4
    for (bx, by), idx in zip(batches, expected):
        assert by.tolist() == idx.tolist() and bx[:, 0].tolist() == idx.tolist()
