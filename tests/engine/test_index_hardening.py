"""The photo index against odd file names, corrupt databases and a full disk."""
from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from engine.core import Engine
from engine.jobs import Priority
from engine.search import db

SKIMAGE_DATA = Path(__import__("importlib.util").util.find_spec("skimage").submodule_search_locations[0]) / "data"


@pytest.fixture(scope="module")
def engine():
    eng = Engine(device="cpu").start()
    assert eng.wait_ready(60)
    yield eng
    eng.shutdown()


def _index(engine, folder, db_path):
    return engine.submit("index_folder", {"folder": str(folder), "db_path": str(db_path)},
                         priority=Priority.BACKGROUND).result(300)


def _photos(folder: Path, names=(b"coffee.png", b"cat\xff.png")) -> list[str]:
    """Real photos, one of them under a name whose bytes are not UTF-8."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = ("coffee.png", "chelsea.png")
    out = []
    for raw, src in zip(names, sources):
        path = os.path.join(os.fsencode(folder), raw)
        shutil.copy(SKIMAGE_DATA / src, path)
        out.append(os.fsdecode(path))
    return out


def test_a_non_utf8_file_name_is_indexed_searched_and_kept_losslessly(engine, tmp_path):
    folder, db_path = tmp_path / "photos", tmp_path / "index.sqlite3"
    paths = _photos(folder)
    res = _index(engine, folder, db_path)
    assert (res.total, res.embedded, res.bad) == (2, 2, ())
    again = _index(engine, folder, db_path)  # the same batch no longer blocks the folder
    assert (again.unchanged, again.embedded) == (2, 0)
    con = db.connect(db_path)
    try:
        stored = [p for (p,) in con.execute("SELECT path FROM files ORDER BY path")]
        found, _ = db.load_vectors(con, res.model_id, res.root)
    finally:
        con.close()
    assert b"cat\xff.png" in [os.path.basename(p) for p in stored if isinstance(p, bytes)]
    assert sorted(found) == sorted(paths)
    assert all(os.path.isfile(p) for p in found)  # the names open the real files
    hits = engine.submit("search", {"query": "a cat", "folder": str(folder), "db_path": str(db_path)}).result(60)
    assert hits.hits[0].path == paths[1]
    os.remove(paths[1])
    after = _index(engine, folder, db_path)  # a deleted odd name is pruned
    assert (after.total, after.removed) == (1, 1)


def test_odd_names_print_and_show_safely():
    from engine.paths import printable_path, shown_path

    odd = os.fsdecode(b"/photos/cat\xff.png")
    assert printable_path(odd) == "/photos/cat\\xff.png"
    assert shown_path(odd) == "/photos/cat\ufffd.png"
    assert printable_path("/photos/café.png") == shown_path("/photos/café.png") == "/photos/café.png"


def _damage(path: Path, how: str) -> None:
    if how == "truncated":
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.truncate(size // 2)
    else:
        with open(path, "r+b") as f:
            f.seek(0)
            f.write(os.urandom(4096))


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_a_damaged_index_is_set_aside_named_and_rebuilt(engine, tmp_path, how):
    folder, db_path = tmp_path / "photos", tmp_path / "index.sqlite3"
    _photos(folder, names=(b"coffee.png", b"cat.png"))
    _index(engine, folder, db_path)
    con = sqlite3.connect(db_path, isolation_level=None)
    # make the database big enough that half of it loses real pages
    con.execute("CREATE TABLE filler(x BLOB)")
    con.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(4000),) for _ in range(64)])
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    db._checked.clear()  # as in a new session
    _damage(db_path, how)
    res = _index(engine, folder, db_path)
    assert (res.total, res.embedded) == (2, 2)
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1  # kept, never deleted
    assert len(res.notices) == 1 and str(db_path) in res.notices[0] and aside[0].name in res.notices[0]
    con = db.connect(db_path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def test_a_full_disk_is_reported_as_disk_full(tmp_path):
    from engine.errors import DiskFullError

    con = db.connect(tmp_path / "index.sqlite3")
    tbl = db.emb_table(con, "m", 4)
    # SQLite's own page limit fails writes with SQLITE_FULL, exactly as a full disk does
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.execute(f"PRAGMA max_page_count={pages + 1}")
    rows = [(f"/p/{i}.png", "/p", 1, 1, f"h{i}", "ok", None, 0.0) for i in range(500)]
    vectors = [(f"h{i}", [0.0] * 4) for i in range(500)]
    with pytest.raises(DiskFullError, match="disk full.*index.sqlite3"):
        db.write_batch(con, tbl, rows, vectors)
    assert con.execute("SELECT count(*) FROM files").fetchone()[0] == 0  # the batch rolled back whole
    con.close()


def test_two_indexers_of_one_folder_never_embed_twice(tmp_path):
    """Two engines (as two app instances would have) index the same folder at once."""
    folder, db_path = tmp_path / "photos", tmp_path / "index.sqlite3"
    folder.mkdir()
    for name in ("coffee.png", "chelsea.png", "rocket.jpg", "astronaut.png"):
        shutil.copy(SKIMAGE_DATA / name, folder / name)
    engines = [Engine(device="cpu").start() for _ in range(2)]
    waited = []
    try:
        for eng in engines:
            assert eng.wait_ready(60)
            eng.add_listener(lambda ev: waited.append(1) if getattr(ev, "kind", None) == "progress"
                             and "another indexer" in ev.payload.message else None)
        handles = [eng.submit("index_folder", {"folder": str(folder), "db_path": str(db_path),
                                               "model_id": "fmnist-lit-tiny", "batch_size": 2},
                              priority=Priority.BACKGROUND) for eng in engines]
        results = [h.result(300) for h in handles]
    finally:
        for eng in engines:
            eng.shutdown()
    assert sorted(r.embedded for r in results) == [0, 4]  # one embedded all four, the other waited and reused
    assert waited
    con = db.connect(db_path)
    assert con.execute("SELECT count(*), count(DISTINCT path) FROM files").fetchone() == (4, 4)
    con.close()
