"""Build resources/labels/imagenet_wordnet.json: the WordNet 3.0 hierarchy above ImageNet-1k's classes.

ImageNet-1k's class ids (n01440764, ...) are WordNet 3.0 noun offsets, and the classes sorted
by id are the class indices. This reads WordNet's own data file directly (no NLTK) and keeps,
for the 1000 classes and every hypernym above them, the synonyms and the classes each node
covers ("dog" covers the 118 breeds, "vehicle" the cars, boats and planes). Search uses it to
match a query like "a reptile" to every class under it.

    apt-get install wordnet-base        # WordNet 3.0 under /usr/share/wordnet
    python resources/build_wordnet.py [--wordnet /usr/share/wordnet] [--synsets FILE] [--e5]

`--synsets` lists the 1000 wnids in class order (default: the copy timm ships).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUT = Path(__file__).resolve().parent / "labels" / "imagenet_wordnet.json"
TOO_GENERIC = 600  # nodes over this many classes ("entity", "object", "whole") say nothing about a photo


def default_synsets() -> Path:
    import timm

    return Path(timm.__file__).parent / "data" / "_info" / "imagenet_synsets.txt"


def read_nouns(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """offset -> (lemmas, hypernym offsets) from WordNet's data.noun (format: wndb(5WN))."""
    out = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if not line or line.startswith(" "):  # the licence header lines start with two spaces
            continue
        fields = line.split(" | ")[0].split()
        offset, n_words = fields[0], int(fields[3], 16)
        words = [fields[4 + 2 * i] for i in range(n_words)]
        i = 4 + 2 * n_words
        n_ptrs = int(fields[i])
        ptrs = [fields[i + 1 + 4 * k: i + 5 + 4 * k] for k in range(n_ptrs)]
        hypernyms = [p[1] for p in ptrs if p[0] in ("@", "@i") and p[2] == "n"]
        out[offset] = ([_lemma(w) for w in words], hypernyms)
    return out


def _lemma(word: str) -> str:
    """'Canis_familiaris' -> 'Canis familiaris'; adjective markers like 'hot(a)' dropped."""
    return word.split("(")[0].replace("_", " ")


def closure(offset: str, nouns: dict) -> list[str]:
    """The synset and every hypernym above it (all paths), nearest first."""
    seen, order, todo = set(), [], [offset]
    while todo:
        nxt = []
        for o in todo:
            if o not in seen:
                seen.add(o)
                order.append(o)
                nxt += nouns[o][1]
        todo = nxt
    return order


def build(wordnet: Path, synsets: Path) -> dict:
    nouns = read_nouns(wordnet / "data.noun")
    wnids = synsets.read_text().split()
    if len(wnids) != 1000:
        raise SystemExit(f"{synsets}: expected 1000 wnids, found {len(wnids)}")
    covers: dict[str, list[int]] = {}
    for c, wnid in enumerate(wnids):
        for node in closure(wnid[1:], nouns):
            covers.setdefault(node, []).append(c)
    classes = [[w, nouns[w[1:]][0]] for w in wnids]
    class_offsets = {w[1:] for w in wnids}
    nodes = [["n" + o, nouns[o][0], cls] for o, cls in sorted(covers.items(), key=lambda kv: (-len(kv[1]), kv[0]))
             if len(cls) <= TOO_GENERIC and o not in class_offsets]
    return {"about": "WordNet 3.0 synonyms of the ImageNet-1k classes (class-index order) and the hypernyms above "
                     "them with the classes each covers (nodes over more than "
                     f"{TOO_GENERIC} classes left out). Built by: python resources/build_wordnet.py",
            "classes": classes, "nodes": nodes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    ap.add_argument("--synsets", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--e5", action="store_true", help="also write the vocabulary's e5 embeddings (minutes)")
    args = ap.parse_args()
    data = build(args.wordnet, args.synsets or default_synsets())
    args.out.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(data['classes'])} classes, {len(data['nodes'])} hypernym nodes, "
          f"{args.out.stat().st_size / 1024:.0f} KiB")
    if args.e5:
        write_e5_vocabulary(args.out.parent)


def write_e5_vocabulary(folder: Path) -> None:
    """The search vocabulary's multilingual-e5-small embeddings (float16), so that the first query
    in another language does not wait minutes for them (engine/search/labelspace.py)."""
    import numpy as np

    from engine.search import labelspace

    labelspace.hierarchy.cache_clear()
    labelspace.vocabulary.cache_clear()
    texts = labelspace.vocabulary().texts
    name = labelspace.embeddings_name(labelspace.E5.tag, texts)
    for old in folder.glob(f"{labelspace.E5.tag}-*.npy"):
        old.unlink()
    emb = labelspace._unit(labelspace.E5().encode(list(texts)))
    np.save(folder / name, emb.astype(np.float16))
    print(f"{folder / name}: {emb.shape}")


if __name__ == "__main__":
    main()
