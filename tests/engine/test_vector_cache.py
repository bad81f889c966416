"""The in-memory vectors of warm queries: rows added by indexing are appended without re-reading
the index, anything else reloads it, and two index files never share a cache entry."""
from __future__ import annotations

import time

import numpy as np

from engine.search import db
from engine.search.query import VectorCache

DIM = 8
ROOT = "/photos"


def add(con, names: list[str], rng, root: str = ROOT) -> dict[str, np.ndarray]:
    tbl = db.emb_table(con, "m", DIM)
    vecs = {n: rng.standard_normal(DIM).astype(np.float32) for n in names}
    now = time.time()
    rows = [(f"{root}/{n}", root, 1, 1, f"h-{root}-{n}", "ok", None, now) for n in names]
    db.write_batch(con, tbl, rows, [(f"h-{root}-{n}", v) for n, v in vecs.items()])
    return {f"{root}/{n}": v for n, v in vecs.items()}


def as_dict(paths, matrix) -> dict[str, np.ndarray]:
    return dict(zip(paths, matrix))


def same(got: dict, want: dict) -> bool:
    return got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)


def test_indexing_batches_are_appended_and_removals_reload(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    path = str(tmp_path / "a.sqlite3")
    con = db.connect(path)
    want = add(con, ["1.jpg", "2.jpg"], rng)
    cache = VectorCache()
    assert same(as_dict(*cache.get(con, "m", ROOT, path)), want)

    reads = []
    real = db.load_vectors
    monkeypatch.setattr(db, "load_vectors", lambda *a, **k: reads.append(k.get("since")) or real(*a, **k))
    want |= add(con, ["3.jpg"], rng)
    add(con, ["x.jpg"], rng, root="/elsewhere")  # another folder's batch: counted, not loaded
    want |= add(con, ["4.jpg", "5.jpg"], rng)
    assert same(as_dict(*cache.get(con, "m", ROOT, path)), want)
    assert len(reads) == 1 and reads[0] is not None, "one read of the new rows only"
    assert same(as_dict(*cache.get(con, "m", ROOT, path)), want) and len(reads) == 1, "unchanged: no read"

    db.prune(con, ROOT, {p for p in want if not p.endswith("1.jpg")})
    del want[f"{ROOT}/1.jpg"]
    assert same(as_dict(*cache.get(con, "m", ROOT, path)), want)
    assert reads[-1] is None, "a removal reloads everything"

    want[f"{ROOT}/2.jpg"] = add(con, ["2.jpg"], rng)[f"{ROOT}/2.jpg"]  # re-indexed in place
    assert same(as_dict(*cache.get(con, "m", ROOT, path)), want) and reads[-1] is None
    con.close()


def test_two_index_files_never_share_vectors(tmp_path):
    rng = np.random.default_rng(1)
    a, b = str(tmp_path / "a.sqlite3"), str(tmp_path / "b.sqlite3")
    con_a, con_b = db.connect(a), db.connect(b)
    want_a = add(con_a, ["1.jpg", "2.jpg"], rng)
    want_b = add(con_b, ["1.jpg", "2.jpg"], rng)  # same count, possibly the same newest `seen`
    con_b.execute("UPDATE files SET seen=(SELECT max(seen) FROM files)")
    con_a.execute("UPDATE files SET seen=(SELECT max(seen) FROM files)")
    con_b.execute("UPDATE files SET seen=?", (con_a.execute("SELECT max(seen) FROM files").fetchone()[0],))
    cache = VectorCache()
    assert same(as_dict(*cache.get(con_a, "m", ROOT, a)), want_a)
    assert same(as_dict(*cache.get(con_b, "m", ROOT, b)), want_b)
    con_a.close()
    con_b.close()
