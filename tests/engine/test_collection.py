"""The collection views' engine side: PCA layout, k-means, perceptual hashes and duplicate groups
(fed vectors directly: no model), and the map/duplicates commands on one tiny indexed folder."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from engine.collection import duplicates, map as photo_map
from engine.collection.perceptual import hash_image, similarity
from engine.jobs import Progress

SKIMAGE_DATA = Path(__import__("importlib.util").util.find_spec("skimage").submodule_search_locations[0]) / "data"


def run(gen):
    """Drive a step generator to its return value; every yield must be Progress."""
    try:
        while True:
            assert isinstance(next(gen), Progress)
    except StopIteration as stop:
        return stop.value


def blobs(seed=0, k=3, per=40, d=32):
    """k well-separated unit-vector clusters: (vectors, true labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 4
    x = np.concatenate([c + rng.normal(size=(per, d)) * 0.3 for c in centres]).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(k), per)


def test_pca_layout_shape_determinism_and_axes():
    x, truth = blobs()
    mean, comps = run(photo_map.pca_basis(x))
    xy = photo_map.pca_project(x, mean, comps)
    assert xy.shape == (len(x), 2) and xy.dtype == np.float32
    again = photo_map.pca_project(x, *run(photo_map.pca_basis(x.copy())))
    np.testing.assert_array_equal(xy, again)  # same photos, same map
    ref = np.linalg.svd(x - x.mean(0), full_matrices=False)[2][:2]  # the axes by a plain SVD of the data
    assert np.allclose(np.abs(comps @ ref.T), np.eye(2), atol=1e-4)
    assert xy[:, 0].var() >= xy[:, 1].var()  # first axis carries the most variance
    norm = photo_map.normalised(xy)
    assert np.abs(norm).max() == pytest.approx(1.0)
    # clusters separate on the map: each blob's spread is far below the distance between blobs
    centres = np.stack([xy[truth == c].mean(0) for c in range(3)])
    assert min(np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3)) > \
        3 * max(xy[truth == c].std(0).max() for c in range(3))


def test_kmeans_finds_the_blobs_and_is_seeded():
    x, truth = blobs(seed=1, k=4)
    labels, centres = run(photo_map.kmeans(x, 4, seed=0))
    assert centres.shape == (4, x.shape[1])
    # a perfect clustering up to renaming: each true blob maps to exactly one label
    assert all(len(set(labels[truth == c])) == 1 for c in range(4)) and len(set(labels)) == 4
    again, _ = run(photo_map.kmeans(x, 4, seed=0))
    np.testing.assert_array_equal(labels, again)
    warm, _ = run(photo_map.kmeans(x, 4, init=centres))  # warm start from the cached centres: same answer
    np.testing.assert_array_equal(labels, warm)
    assert photo_map.cluster_count(6) == 2 and photo_map.cluster_count(10**6) == photo_map.MAX_CLUSTERS


def _variants(name: str) -> dict[str, Image.Image]:
    img = Image.open(SKIMAGE_DATA / name).convert("RGB")
    w, h = img.size
    return {"orig": img, "half": img.resize((w // 2, h // 2)),
            "crop": img.crop((w // 10, h // 10, w, h)),
            "mirror": img.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
            "bright": ImageEnhance.Brightness(img).enhance(1.3)}


def test_perceptual_hash_survives_edits_and_tells_photos_apart():
    cat, coffee = _variants("chelsea.png"), _variants("coffee.png")
    h = {k: hash_image(v) for k, v in cat.items()}
    for kind in ("half", "crop", "mirror", "bright"):
        assert similarity(h["orig"], h[kind]) >= 0.85, kind
    assert similarity(h["orig"], hash_image(coffee["orig"])) < 0.7


def test_duplicate_groups_from_vectors_and_hashes():
    """3 photos x (original, resized, mirrored): three groups of three, none joining two photos,
    even with vectors that call all the photos alike (cosine 0.9 across photos)."""
    names = ("chelsea.png", "coffee.png", "astronaut.png")
    bits, vecs, src = [], [], []
    rng = np.random.default_rng(0)
    base = rng.normal(size=16)
    for s, name in enumerate(names):
        own = base + rng.normal(size=16) * 0.45  # a different photo of "the same kind of thing"
        for kind in ("orig", "half", "mirror"):
            bits.append(hash_image(_variants(name)[kind]))
            vecs.append(own + rng.normal(size=16) * 0.15)
            src.append(s)
    x = np.array(vecs, np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    i, j, sims = run(duplicates.similar_pairs(x, np.stack(bits), np.ones(len(x), bool), duplicates.DEFAULT_THRESHOLD))
    assert (sims >= duplicates.DEFAULT_THRESHOLD).all() and (i < j).all()
    groups = duplicates.union_find_groups(len(x), i, j)
    assert sorted(sorted(g) for g in groups) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    # a stricter threshold keeps a subset of the pairs; without hashes nothing reaches it
    pairs = set(zip(i.tolist(), j.tolist()))
    i2, j2, _ = run(duplicates.similar_pairs(x, np.stack(bits), np.ones(len(x), bool), 0.99))
    assert set(zip(i2.tolist(), j2.tolist())) < pairs
    i3, _, _ = run(duplicates.similar_pairs(x, np.stack(bits), np.zeros(len(x), bool), duplicates.DEFAULT_THRESHOLD))
    assert len(i3) == 0


def test_keeper_is_the_largest_then_least_compressed_then_oldest():
    w, h = np.array([100, 200, 200, 200]), np.array([100, 100, 100, 100])
    sizes, mtimes = np.array([10, 5, 9, 9]), np.array([1.0, 1.0, 3.0, 2.0])
    paths = ["a", "b", "c", "d"]
    assert duplicates.keeper_of([0, 1, 2, 3], w, h, sizes, mtimes, paths) == 3


# ------------------------------------------------------------------------------ the commands, in-process
@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """3 skimage photos + a resized copy, a mirrored copy and a byte-identical copy, indexed once."""
    folder = tmp_path_factory.mktemp("collection")
    for name in ("chelsea.png", "coffee.png", "rocket.jpg"):
        shutil.copy(SKIMAGE_DATA / name, folder / name)
    cat = Image.open(SKIMAGE_DATA / "chelsea.png").convert("RGB")
    cat.resize((cat.width // 2, cat.height // 2)).save(folder / "chelsea_small.jpg", quality=85)
    Image.open(SKIMAGE_DATA / "coffee.png").convert("RGB").transpose(
        Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "coffee_mirror.jpg", quality=90)
    shutil.copy(SKIMAGE_DATA / "rocket.jpg", folder / "rocket_copy.jpg")
    return folder


def _main(argv, capsys):
    from main import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_map_json_and_png(tiny_folder, tmp_path, capsys):
    out_png = tmp_path / "map.png"
    code, out, err = _main(["map", str(tiny_folder), "--out", str(out_png), "--json", "--device", "cpu"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["method"] == "pca" and len(doc["photos"]) == 6
    assert {"path", "x", "y", "cluster"} <= set(doc["photos"][0])
    assert all(-1 <= p["x"] <= 1 and -1 <= p["y"] <= 1 for p in doc["photos"])
    assert len(doc["clusters"]) == 2 and all(c["label"] for c in doc["clusters"])
    pos = {Path(p["path"]).name: (p["x"], p["y"]) for p in doc["photos"]}
    assert pos["rocket.jpg"] == pos["rocket_copy.jpg"]  # identical bytes, identical place
    with Image.open(out_png) as im:
        assert im.size[0] >= 800
    # the second run reuses the cached layout: the same places
    code, again, err = _main(["map", str(tiny_folder), "--json", "--no-index", "--device", "cpu"], capsys)
    assert code == 0, err
    assert json.loads(again)["photos"] == doc["photos"] and json.loads(again)["reused"] == 6


def test_cli_duplicates_json_never_deletes(tiny_folder, capsys):
    before = sorted(p.name for p in tiny_folder.iterdir())
    code, out, err = _main(["duplicates", str(tiny_folder), "--json", "--device", "cpu"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    groups = sorted(sorted(Path(p["path"]).name for p in g["photos"]) for g in doc["groups"])
    assert groups == [["chelsea.png", "chelsea_small.jpg"], ["coffee.png", "coffee_mirror.jpg"],
                      ["rocket.jpg", "rocket_copy.jpg"]]
    keepers = {Path(g["keeper"]).name for g in doc["groups"]}
    assert {"chelsea.png", "coffee.png"} <= keepers  # the full-size originals
    assert sorted(p.name for p in tiny_folder.iterdir()) == before
    code, out, err = _main(["duplicates", str(tiny_folder), "--threshold", "1.5", "--device", "cpu"], capsys)
    assert code == 2 and "threshold" in err


def test_cluster_names_are_nearest_and_not_shared():
    from engine.collection.labels import cluster_names

    bank = np.eye(4, dtype=np.float32)  # four names, one axis each
    names = ["cat", "tabby", "dog", "car"]
    centres = np.array([[1.0, 0.8, 0.1, 0], [0.9, 0.85, 0.0, 0.3]], np.float32)  # both nearest cat, tabby
    assert cluster_names(centres, names, bank) == ["cat · tabby", "car · dog"]


def test_cached_pca_layout_keeps_places_when_photos_are_added():
    from engine.collection.jobs import _layout
    from engine.collection.layout_cache import CachedLayout

    x, _ = blobs(seed=2)
    keys = np.array([f"h{i:03d}" for i in range(len(x))])
    xy, mean, comps, reused = run(_layout("pca", x[:100], keys[:100], None, 0))
    assert not reused.any()
    cached = CachedLayout(keys[:100], xy, mean, comps, np.zeros((0, x.shape[1])))
    xy2, _, _, reused2 = run(_layout("pca", x, keys, cached, 0))  # 20 photos added
    np.testing.assert_array_equal(xy2[:100], xy)  # old photos stay where they were
    assert reused2[:100].all() and not reused2[100:].any()


def test_tsne_runs_in_a_child_process_that_stop_ends():
    import multiprocessing

    x, _ = blobs(seed=3, per=15)
    xy = run(photo_map.nonlinear_layout("tsne", x))
    assert xy.shape == (len(x), 2) and np.isfinite(xy).all()
    gen = photo_map.nonlinear_layout("tsne", np.repeat(x, 20, axis=0))  # 900 points: seconds of work
    assert isinstance(next(gen), Progress)
    gen.close()  # Stop: the engine closes the job's generator
    assert not [p for p in multiprocessing.active_children() if p.name == "patchwork-tsne"]
