"""Offline search quality: precision@1 and @10 of text queries, English and Chinese.

Two sets, with queries and their right answers fixed here before any result was seen:
  photos      the real photos that ship offline (scikit-image's samples, scikit-learn's two
              JPEGs), one query per photo, in English and in Chinese;
  categories  broad queries ("an animal", "a vehicle") over 10 random crops of each of those
              photos;
  fashion     a public collection with folder-level labels from the package lists (Debian's
              dataset-fashion-mnist): 30 test images of each of its 10 classes, inverted back to
              dark products on white as Zalando photographed them; item and group queries
              ("a sneaker", "footwear"). Skipped with a line saying how to get it.
Methods, all over the same classifier probabilities:
  naive       top-10 probabilities x MiniLM("a photo of a {class}"), cosine (30 lines of ConSE);
  conse       today's conse-lite0-minilm through its catalogue builder;
  labelspace  engine/search/labelspace.py (class memberships through WordNet), with ablations.
It also times the classifiers (Lite0 vs Lite2) per image and reports the relevance cut-off's
behaviour on queries that have no answer among the photos.

    python benchmarks/search_quality.py [--crops 10] [--models lite0,lite2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PATCHWORK_HOME", tempfile.mkdtemp(prefix="pw-quality-"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

# (photo, English query, Chinese query): the photo is the one right answer.
PHOTO_QUERIES = [
    ("chelsea", "a cat", "一只猫"),
    ("chelsea", "a tabby kitten", "虎斑小猫"),
    ("coffee", "a cup of coffee", "一杯咖啡"),
    ("coffee", "espresso", "浓缩咖啡"),
    ("rocket", "a rocket launch", "火箭发射"),
    ("astronaut", "an astronaut in a spacesuit", "穿宇航服的宇航员"),
    ("horse", "a horse", "一匹马"),
    ("camera", "a man with a camera", "拿着相机的男人"),
    ("coins", "coins", "硬币"),
    ("moon", "the moon", "月亮"),
    ("clock", "a clock", "时钟"),
    ("motorcycle_left", "a motorcycle", "摩托车"),
    ("brick", "a brick wall", "砖墙"),
    ("grass", "grass", "草地"),
    ("gravel", "gravel", "碎石"),
    ("hubble_deep_field", "galaxies in space", "太空中的星系"),
    ("page", "a page of printed text", "一页印刷文字"),
    ("flower", "a flower", "一朵花"),
    ("china", "a Chinese temple", "中国寺庙"),
    ("colorwheel", "a colour wheel", "色轮"),
]
# (English, Chinese, photos that answer it) over the crops.
CATEGORY_QUERIES = [
    ("an animal", "动物", {"chelsea", "horse"}),
    ("a mammal", "哺乳动物", {"chelsea", "horse"}),
    ("a pet", "宠物", {"chelsea"}),
    ("a vehicle", "交通工具", {"motorcycle_left", "rocket"}),
    ("a drink", "饮料", {"coffee"}),
    ("a person", "一个人", {"astronaut", "camera"}),
    ("a building", "建筑物", {"china"}),
    ("a plant", "植物", {"flower", "grass"}),
    ("money", "钱", {"coins"}),
    ("a timepiece", "计时器", {"clock"}),
]
# (English, Chinese, Fashion-MNIST classes that answer it): written before any result was seen.
FASHION_QUERIES = [
    ("a T-shirt", "一件T恤", {0}), ("trousers", "裤子", {1}), ("a pullover sweater", "一件套头毛衣", {2}),
    ("a dress", "一条连衣裙", {3}), ("a coat", "一件外套", {4}), ("a sandal", "一只凉鞋", {5}),
    ("a shirt", "一件衬衫", {6}), ("a sneaker", "一只运动鞋", {7}), ("a bag", "一个包", {8}),
    ("an ankle boot", "一只短靴", {9}), ("footwear", "鞋类", {5, 7, 9}), ("a shoe", "一只鞋", {5, 7, 9}),
    ("clothing", "衣服", {0, 1, 2, 3, 4, 6}), ("a handbag", "手提包", {8}),
]
# Queries with no answer among the photos: the relevance cut-off should say "no good match".
NO_ANSWER = [("a dog", "一只狗"), ("a snake", "一条蛇"), ("a piano", "钢琴"), ("a pizza", "披萨"),
             ("a sailboat", "帆船"), ("an elephant", "大象"), ("furniture", "家具"), ("a reptile", "爬行动物")]


def photos() -> dict[str, Image.Image]:
    from skimage import data
    from sklearn.datasets import load_sample_image

    names = {q[0] for q in PHOTO_QUERIES}
    out = {}
    for name in sorted(names - {"flower", "china"}):
        arr = np.asarray(data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(data, name)())
        arr = arr.astype(np.uint8) * 255 if arr.dtype == bool else arr
        if arr.dtype != np.uint8:
            arr = (255 * (arr - arr.min()) / max(1e-9, float(arr.max() - arr.min()))).astype(np.uint8)
        out[name] = Image.fromarray(np.stack([arr] * 3, -1) if arr.ndim == 2 else arr[..., :3]).convert("RGB")
    for name in ("flower", "china"):
        out[name] = Image.fromarray(load_sample_image(f"{name}.jpg"))
    return out


def crops(images: dict[str, Image.Image], n: int, seed: int = 0) -> list[tuple[str, Image.Image]]:
    rng = np.random.default_rng(seed)
    out = []
    for name, img in images.items():
        w, h = img.size
        for _ in range(n):
            cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            im = img.crop((x0, y0, x0 + cw, y0 + ch))
            out.append((name, im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else im))
    return out


def fashion(per_class: int = 30, seed: int = 0) -> tuple[list[int], list[Image.Image]] | None:
    """`per_class` random test images of each Fashion-MNIST class (labels, 224 px RGB), or None."""
    from engine.data.fashion_mnist import is_available, load_fashion_mnist

    if not is_available():
        return None
    data = load_fashion_mnist("test")
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(data.labels == c), per_class, replace=False) for c in range(10)])
    imgs = [Image.fromarray(255 - data.images[i]).convert("RGB").resize((224, 224), Image.Resampling.BICUBIC)
            for i in idx]
    return [int(data.labels[i]) for i in idx], imgs


_probs: dict = {}


def classify(model_id: str, imgs: list[Image.Image]) -> tuple[np.ndarray, float]:
    """Class probabilities (N x 1000) and seconds per image (one batch of 16 at a time); memoised."""
    key = (model_id, id(imgs))
    if key not in _probs:
        _probs[key] = _classify(model_id, imgs)
    return _probs[key]


def _classify(model_id: str, imgs: list[Image.Image]) -> tuple[np.ndarray, float]:
    import torch

    from engine.catalogue import get
    from engine.catalogue.load import build_model
    from engine.preprocess import to_input

    entry = get(model_id)
    model = build_model(entry)
    x = np.stack([to_input(im, entry.preprocess) for im in imgs])
    out = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(x), 16):
            out.append(model(torch.from_numpy(x[i:i + 16])).float().softmax(-1).numpy())
    return np.concatenate(out), (time.perf_counter() - t0) / len(x)


class Methods:
    """Each method: image vectors from probabilities, text vectors from queries; score = dot product."""

    def __init__(self):
        from engine.catalogue import get
        from engine.catalogue.load import build_model
        from engine.search import conse, labelspace

        self.minilm = build_model(get("minilm-l6-v2"))
        self.ls = labelspace
        self.sides = {"minilm": labelspace.TextSide(labelspace.MiniLM(self.minilm)),
                      "e5": labelspace.TextSide(labelspace.E5())}
        first = [d.split(",")[0].strip() for d in conse.labels("imagenet1k")]
        self.naive_emb = labelspace._unit(np.asarray(self.minilm.encode([f"a photo of a {c}" for c in first])))
        self.conse_emb = conse._label_embeddings(self.minilm, conse.label_texts())

    def _minilm(self, texts):
        return self.ls._unit(np.asarray(self.minilm.encode(list(texts)), dtype=np.float32))

    def naive(self, probs, texts):
        return self._topk_mean(probs, self.naive_emb, 10), self._minilm(texts)

    def conse(self, probs, texts):
        """conse.build_conse's encode_image/encode_text, in numpy (same arithmetic, same cached labels)."""
        return self._topk_mean(probs, self.ls._unit(self.conse_emb), 10), self._minilm(texts)

    @staticmethod
    def _topk_mean(probs, emb, k):
        idx = np.argsort(-probs, axis=1)[:, :k]
        w = np.take_along_axis(probs, idx, 1)
        w /= w.sum(1, keepdims=True)
        return Methods._unit((w[..., None] * emb[idx]).sum(1))

    @staticmethod
    def _unit(x):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    def labelspace(self, probs, texts, encoder="e5", temperature=None, margin=None, hypernyms=True):
        ls = self.ls
        side = self.sides[encoder]
        if not hypernyms:
            margin = 1e9
        kw = {"temperature": temperature or ls.TEMPERATURE,
              "margin": ls.HYPERNYM_MARGIN if margin is None else margin}
        return ls.image_vectors(probs), ls.query_vectors(side.embed(list(texts)), side.vocab_emb, side.vocab, **kw)


def precision(scores: np.ndarray, names: list[str], answers: list[set[str]]) -> tuple[float, float]:
    """Mean precision@1 and @10 over the queries (rows of scores: query x image)."""
    p1, p10 = [], []
    for row, ans in zip(scores, answers):
        order = np.argsort(-row, kind="stable")
        p1.append(names[order[0]] in ans)
        p10.append(np.mean([names[i] in ans for i in order[:10]]))
    return float(np.mean(p1)), float(np.mean(p10))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, default=10)
    ap.add_argument("--models", default="lite0,lite2")
    args = ap.parse_args()
    images = photos()
    cropped = crops(images, args.crops)
    m = Methods()
    sets = {
        "photos": (list(images), list(images.values()), [q[1] for q in PHOTO_QUERIES], [q[2] for q in PHOTO_QUERIES],
                   [{q[0]} for q in PHOTO_QUERIES]),
        "categories": ([c[0] for c in cropped], [c[1] for c in cropped], [q[0] for q in CATEGORY_QUERIES],
                       [q[1] for q in CATEGORY_QUERIES], [q[2] for q in CATEGORY_QUERIES]),
    }
    fm = fashion()
    if fm is None:
        print("fashion set skipped: Fashion-MNIST not found (sudo apt install dataset-fashion-mnist, "
              "or Get Fashion-MNIST in the Train panel)")
    else:
        sets["fashion"] = (fm[0], fm[1], [q[0] for q in FASHION_QUERIES], [q[1] for q in FASHION_QUERIES],
                           [q[2] for q in FASHION_QUERIES])
    variants = {
        "naive ConSE": lambda p, t: m.naive(p, t),
        "today's ConSE": lambda p, t: m.conse(p, t),
        "label space (MiniLM), class names only": lambda p, t: m.labelspace(p, t, "minilm", hypernyms=False),
        "label space (MiniLM) + WordNet hypernyms": lambda p, t: m.labelspace(p, t, "minilm"),
        "label space (e5), class names only": lambda p, t: m.labelspace(p, t, hypernyms=False),
        "label space (e5) + WordNet hypernyms (default)": lambda p, t: m.labelspace(p, t),
    }
    for model in args.models.split(","):
        print(f"\n## EfficientNet-{model.capitalize()}")
        for set_name, (names, imgs, en, zh, answers) in sets.items():
            probs, per_image = classify(f"efficientnet-{model}", imgs)
            print(f"\n{set_name}: {len(imgs)} images, {len(en)} queries; classifier {1000 * per_image:.1f} ms/image")
            print("| method | P@1 en | P@10 en | P@1 zh | P@10 zh |\n|---|---|---|---|---|")
            for label, fn in variants.items():
                cells = []
                for texts in (en, zh):
                    img_vec, txt_vec = fn(probs, texts)
                    cells += precision(txt_vec @ img_vec.T, names, answers)
                print(f"| {label} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
        if "lite0" == model:
            names, imgs = sets["photos"][0], sets["photos"][1]
            probs = classify("efficientnet-lite0", imgs)[0]
            relevance_report(variants, probs, names)
            sweep(m, sets)
    classifier_speed(args.models.split(","))


def relevance_report(variants, probs, names) -> None:
    """The top hit's relevance (engine/search/relevance.py) for answered vs unanswerable queries."""
    from engine.search import relevance as rel

    answered = [(q[1], q[0]) for q in PHOTO_QUERIES] + [(q[2], q[0]) for q in PHOTO_QUERIES]
    unanswerable = [t for pair in NO_ANSWER for t in pair]
    refs_text = list(rel.reference_texts())
    print(f"\nrelevance of the top hit on the photos, cut-off {rel.DEFAULT_CUTOFF}: answered queries (right photo "
          "first and over the cut-off) vs unanswerable ones (none over it: 'no good match')")
    print("| method | answered: right and over | answered: top relevance (median) | unanswerable: no match | "
          "unanswerable: top relevance (max) |\n|---|---|---|---|---|")
    for label, fn in variants.items():
        img, refs = fn(probs, refs_text)
        pool = rel.reference_pool(img, refs)

        def top(text):
            sims = img @ fn(probs, [text])[1][0]
            i = int(np.argmax(sims))
            return names[i], float(rel.relevance(sims[i:i + 1], *pool)[0])

        hits = [top(t) + (a,) for t, a in answered]
        right = sum(name == a and r >= rel.DEFAULT_CUTOFF for name, r, a in hits)
        none = [top(t)[1] for t in unanswerable]
        print(f"| {label} | {right}/{len(hits)} | {np.median([r for _, r, _ in hits]):.2f} | "
              f"{sum(r < rel.DEFAULT_CUTOFF for r in none)}/{len(none)} | {max(none):.2f} |")
        if "default" in label:
            print("  per query:", ", ".join(f"{t} {top(t)[1]:.2f}" for t in unanswerable))


def classifier_speed(models: list[str]) -> None:
    """Indexing cost: ms per photo of each classifier, one thread, batch 16, after a warm-up (twice each)."""
    import torch

    from engine.catalogue import get
    from engine.catalogue.load import build_model

    torch.set_num_threads(1)
    print("\nclassifier time per photo (1 thread, batch 16):")
    for model_id in [f"efficientnet-{m}" for m in models] * 2:
        entry = get(model_id)
        model = build_model(entry)
        x = torch.randn(16, 3, entry.preprocess.input_size, entry.preprocess.input_size)
        with torch.inference_mode():
            model(x[:2])
            t0 = time.perf_counter()
            model(x)
            model(x)
        print(f"  {model_id}: {1000 * (time.perf_counter() - t0) / 32:.1f} ms")


def sweep(m: Methods, sets) -> None:
    """Temperature and hypernym margin of the label space (English + Chinese, both sets, Lite0)."""
    cache = {s: classify("efficientnet-lite0", v[1])[0] for s, v in sets.items()}  # memoised
    print("\ntemperature / margin sweep (mean P@1 over every set x language cell; mean P@10):")
    for temperature in (0.25, 0.35, 0.5, 1.0):
        for margin in (0.0, 0.5):
            p1s, p10s = [], []
            for s, (names, _, en, zh, answers) in sets.items():
                for texts in (en, zh):
                    iv, tv = m.labelspace(cache[s], texts, temperature=temperature, margin=margin)
                    a, b = precision(tv @ iv.T, names, answers)
                    p1s.append(a)
                    p10s.append(b)
            print(f"  T={temperature} margin={margin}: P@1 {np.mean(p1s):.3f}  P@10 {np.mean(p10s):.3f}")


if __name__ == "__main__":
    main()
