"""Label-space search: the WordNet resource, the query/photo arithmetic, relevance and "no good match"."""
from __future__ import annotations

import numpy as np

from engine.resources import labels
from engine.search import labelspace as ls
from engine.search.query import Hit, SearchResult
from engine.search.relevance import reference_texts, relevance


def _node(name: str):
    return next(n for n in ls.hierarchy()["nodes"] if n[1][0] == name)


def test_hierarchy_covers_the_imagenet_groups():
    data = ls.hierarchy()
    assert len(data["classes"]) == 1000
    dog = _node("dog")[2]
    assert len(dog) == 118 and all(151 <= c <= 268 for c in dog)  # the dog breeds
    assert 281 in _node("cat")[2] and 281 not in dog  # tabby
    assert set(_node("reptile")[2]) >= {33, 37, 46, 49, 52}  # loggerhead, box turtle, green lizard, crocodile, snake
    assert 817 in _node("vehicle")[2] and 967 not in _node("vehicle")[2]  # sports car, not espresso
    assert "tabby cat" in data["classes"][281][1]


def test_vocabulary_groups_texts_by_node():
    v = ls.vocabulary()
    assert v.text_node[v.node_start].tolist() == list(range(len(v.node_start)))
    assert np.all(np.diff(v.text_node) >= 0) and len(v.texts) == len(v.text_node)
    assert v.pair_class.max() == 999 and v.pair_node.max() == len(v.node_start) - 1
    assert labels("imagenet1k")[0].split(",")[0] in v.texts[0]


def test_a_hypernym_reaches_every_class_under_it():
    v = ls.vocabulary()
    sims = np.zeros((1, len(v.texts)), np.float32)
    dog_node = 1000 + [n[0] for n in ls.hierarchy()["nodes"]].index(_node("dog")[0])
    sims[0, v.text_node == dog_node] = 1.0
    sims[0, v.text_node == 281] = 0.5  # tabby, a little
    scores = ls.class_scores(sims, v)[0]
    assert np.all(scores[_node("dog")[2]] == 1.0) and scores[281] == 0.5 and scores[967] == 0.0
    assert ls.class_scores(sims, v, margin=0.75)[0][151] == 0.25  # a hypernym's margin


def test_a_score_is_the_probability_that_the_photo_shows_what_the_query_asks_for():
    p = np.zeros((3, 1000), np.float32)
    p[0, 281], p[1, 967], p[2] = 1.0, 1.0, 1 / 1000  # a sure cat, a sure espresso, a flat unsure photo (a hub in ConSE)
    p[0, 281], p[0, 282] = 0.7, 0.3
    img = ls.image_vectors(p)
    np.testing.assert_allclose(img.sum(1), 1, rtol=1e-5)
    m = np.zeros(1000, np.float32)
    m[[281, 282, 283, 284, 285]] = 1.0  # "a cat": every cat class is a full member
    scores = img @ m
    assert abs(scores[0] - 1.0) < 1e-5 and scores[1] == 0 and abs(scores[2] - 0.005) < 1e-6
    combo = ls.normalise(2 * m - 0.5 * np.eye(1000, dtype=np.float32)[281])  # "2:a cat - tabby"
    assert combo.max() == 1.0 and combo[281] < combo[282]


def test_query_memberships_peak_on_the_named_class():
    v = ls.vocabulary()
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(v.texts), 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    m = ls.query_vectors(emb[np.flatnonzero(v.text_node == 967)[:1]], emb, v)[0]
    assert int(np.argmax(m)) == 967 and m[967] == 1.0 and 0 <= m.min() and np.median(m) < 0.1


def test_relevance_counts_the_references_that_fit_better():
    from engine.search.relevance import reference_pool

    refs = np.eye(4, dtype=np.float32)  # four reference descriptions
    photos = np.array([[1, 0, 0, 0], [0.6, 0.8, 0, 0]], np.float32)
    pool, n, top = reference_pool(photos, refs, top=2)  # each photo's two best references
    assert (n, top) == (2, 2) and np.allclose(pool, [0.0, 0.6, 0.8, 1.0])
    rel = relevance(np.array([1.0, 0.9, 0.7, -1.0], np.float32), pool, n, top)
    assert rel[0] == 1.0  # no reference fits any photo better
    assert rel[0] > rel[1] > rel[2] > rel[3] == 0.0  # monotone; below every counted reference: 0
    assert abs(rel[2] - (1 - np.log1p(1.0) / np.log1p(2))) < 1e-6  # 0.8 and 1.0 beat 0.7: one per photo
    assert len(reference_texts()) > 1800 and "a photo of a dog" in reference_texts()


def test_no_match_when_nothing_clears_the_cutoff():
    weak = SearchResult("people", (), (), 5, 0.01, cutoff=0.4, best=Hit("/p/grass.png", 0.31, 0.2))
    good = SearchResult("a cat", (), (Hit("/p/cat.png", 0.9, 0.7),), 5, 0.01, cutoff=0.4,
                        best=Hit("/p/cat.png", 0.9, 0.7))
    assert weak.no_match and not good.no_match
    assert SearchResult("x", (), (), 0, 0.0, cutoff=0.4).no_match


def test_efficientnet_lite2_loads_strictly_and_knows_an_espresso():
    import torch
    from skimage import data
    from PIL import Image

    from engine.catalogue import get
    from engine.catalogue.load import build_model
    from engine.preprocess import to_input

    entry = get("efficientnet-lite2")
    model = build_model(entry)  # strict load: every packaged key maps onto timm's Lite2
    x = torch.from_numpy(to_input(Image.fromarray(data.coffee()), entry.preprocess))[None]
    with torch.inference_mode():
        assert int(model(x).argmax()) == 967  # espresso
