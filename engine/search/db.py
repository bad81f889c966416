"""The photo index in SQLite (WAL): one row per file, one embedding table per model.

Vectors are keyed by the file's content hash, so a moved or renamed file reuses its
vector, and switching models never destroys another model's index. Every batch is
one transaction: after a crash (even kill -9) the database is consistent and
indexing resumes with the files not yet committed.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
import time
from pathlib import Path

import numpy as np

from engine.errors import DiskFullError
from engine.paths import data_dir, ensure

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS files(
    path TEXT PRIMARY KEY,       -- absolute path (a BLOB of its bytes when the name is not UTF-8)
    root TEXT NOT NULL,          -- the indexed folder it was found under (same rule)
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT,                   -- blake2b-128 of the bytes; NULL for unreadable files
    status TEXT NOT NULL,        -- 'ok' or 'bad'
    reason TEXT,                 -- why a bad file was skipped
    seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_root ON files(root);
CREATE INDEX IF NOT EXISTS files_hash ON files(hash);
-- warm queries ask for the newest write and the rows after it (VectorCache) at every query
CREATE INDEX IF NOT EXISTS files_seen ON files(seen);
CREATE TABLE IF NOT EXISTS models(model_id TEXT PRIMARY KEY, tbl TEXT UNIQUE NOT NULL, dim INTEGER NOT NULL);
"""


def stored(path: str) -> str | bytes:
    """`path` as a column value: the text when it is valid UTF-8, else the file name's own bytes.

    os.walk gives a name that is not UTF-8 (b'img\\xff.jpg', common on old archives and shared
    drives) as text with lone surrogates, which SQLite cannot store as TEXT. Its bytes are kept
    as a BLOB instead: lossless, and a given path always takes the same form, so equality and
    the primary key still hold.
    """
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def loaded(value: str | bytes) -> str:
    """A path column back as the str that opens the file (surrogateescape for non-UTF-8 bytes)."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def default_db_path() -> Path:
    return ensure(data_dir()) / "photo_index.sqlite3"


_checked: set[str] = set()  # databases whose pages were read through once in this process
_CORRUPT = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB
SQLITE_FULL = 13


def connect(path: str | Path | None = None, notices: list[str] | None = None) -> sqlite3.Connection:
    """Open (or create) the index. A damaged file (truncated, overwritten) is never an
    endless failure: it is renamed aside with a timestamp, never deleted, and a new index is
    started; the one line saying so goes to `notices` (and the log)."""
    path = Path(path or default_db_path())
    try:
        return _open(path)
    except sqlite3.DatabaseError as exc:
        if not is_corrupt(exc):
            raise disk_full_or(exc, path) from None
        aside = set_aside(path)
        message = (f"the photo index {path} was damaged ({exc}); it was moved to {aside.name} "
                   "and a new index is being built")
        log.warning(message)
        if notices is not None:
            notices.append(message)
        return _open(path)


def _open(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, never corrupt
        con.executescript(SCHEMA)
        if str(path) not in _checked:
            verdict = con.execute("PRAGMA quick_check(1)").fetchone()[0]
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {verdict}")
            _checked.add(str(path))
    except BaseException:
        con.close()
        raise
    return con


def is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _CORRUPT:
        return True
    text = str(exc)
    return "malformed" in text or "not a database" in text


def set_aside(path: Path) -> Path:
    """Rename a damaged database (and its -wal/-shm files) to NAME.corrupt-YYYYmmdd-HHMMSS."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            os.replace(extra, aside.with_name(aside.name + suffix))
    os.replace(path, aside)
    _checked.discard(str(path))
    return aside


def disk_full_or(exc: sqlite3.Error, path: str | Path) -> Exception:
    """DiskFullError when `exc` is SQLite failing for want of space (SQLITE_FULL, or an I/O
    error with the disk nearly full); else `exc` itself."""
    code = getattr(exc, "sqlite_errorcode", None)
    folder = Path(path).parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    io_error = code is not None and code & 0xFF == 10  # SQLITE_IOERR_*: ENOSPC shows up as this
    if (code is not None and code & 0xFF == SQLITE_FULL) or (io_error and free is not None and free < 16 * 2**20):
        room = f"; {free / 2**20:.0f} MB free there" if free is not None else ""
        return DiskFullError(f"disk full: cannot write the photo index {path}{room}. "
                             "Free some space and index again; nothing indexed so far was lost")
    return exc


def db_path_of(con: sqlite3.Connection) -> str:
    return con.execute("PRAGMA database_list").fetchone()[2]


def emb_table(con: sqlite3.Connection, model_id: str, dim: int) -> str:
    """The embedding table of `model_id`, created on first use."""
    row = con.execute("SELECT tbl, dim FROM models WHERE model_id=?", (model_id,)).fetchone()
    if row:
        if row[1] != dim:
            raise ValueError(f"index for {model_id} has dim {row[1]}, model gives {dim}")
        return row[0]
    tbl = "emb_" + re.sub(r"[^a-z0-9]+", "_", model_id.lower())[:40]
    n = 1
    while con.execute("SELECT 1 FROM models WHERE tbl=?", (tbl,)).fetchone():
        n += 1
        tbl = f"{tbl}_{n}"
    con.execute("BEGIN IMMEDIATE")
    con.execute(f"CREATE TABLE IF NOT EXISTS {tbl}(hash TEXT PRIMARY KEY, vec BLOB NOT NULL)")
    con.execute("INSERT INTO models VALUES (?,?,?)", (model_id, tbl, dim))
    con.execute("COMMIT")
    return tbl


def existing_table(con: sqlite3.Connection, model_id: str) -> str | None:
    row = con.execute("SELECT tbl FROM models WHERE model_id=?", (model_id,)).fetchone()
    return row[0] if row else None


def write_batch(con: sqlite3.Connection, tbl: str, files: list[tuple], vectors: list[tuple[str, np.ndarray]]) -> None:
    """One transaction: the vectors (hash, vec) and the file rows that point at them."""
    con.execute("BEGIN IMMEDIATE")
    try:
        con.executemany(f"INSERT OR REPLACE INTO {tbl}(hash, vec) VALUES (?, ?)",
                        [(h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in vectors])
        con.executemany("INSERT OR REPLACE INTO files(path, root, size, mtime_ns, hash, status, reason, seen) "
                        "VALUES (?,?,?,?,?,?,?,?)", [(stored(r[0]), stored(r[1]), *r[2:]) for r in files])
        con.execute("COMMIT")
    except BaseException as exc:
        if con.in_transaction:
            con.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError):
            raise disk_full_or(exc, db_path_of(con)) from None
        raise


def prune(con: sqlite3.Connection, root: str, seen_paths: set[str]) -> int:
    """Delete rows of files under `root` that are gone; drop vectors no file points at."""
    rows = con.execute("SELECT path FROM files WHERE root=?", (stored(root),)).fetchall()
    gone = [(p,) for (p,) in rows if loaded(p) not in seen_paths]
    con.execute("BEGIN IMMEDIATE")
    try:
        con.executemany("DELETE FROM files WHERE path=?", gone)
        for (tbl,) in con.execute("SELECT tbl FROM models").fetchall():
            con.execute(f"DELETE FROM {tbl} WHERE hash NOT IN (SELECT hash FROM files WHERE hash IS NOT NULL)")
        con.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise disk_full_or(exc, db_path_of(con)) from None
    return len(gone)


def load_vectors(con: sqlite3.Connection, model_id: str, root: str | None = None, since: float | None = None):
    """(paths, matrix N x D float32) of the ok files under `root` indexed for `model_id`; only the
    rows written after `since` (their `seen`) when given."""
    tbl = existing_table(con, model_id)
    if tbl is None:
        return [], np.zeros((0, 0), np.float32)
    dim = con.execute("SELECT dim FROM models WHERE model_id=?", (model_id,)).fetchone()[0]
    # the rows after `since` are few: walk the seen index, not the folder's (all of its rows)
    hint = " INDEXED BY files_seen" if since is not None else ""
    q = f"SELECT f.path, e.vec FROM files f{hint} JOIN {tbl} e ON e.hash=f.hash WHERE f.status='ok'"
    args: tuple = ()
    if root is not None:
        q += " AND f.root=?"
        args = (stored(root),)
    if since is not None:
        q += " AND f.seen > ?"
        args += (since,)
    rows = con.execute(q + " ORDER BY f.path", args).fetchall()
    if not rows:
        return [], np.zeros((0, dim), np.float32)
    mat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
    return [loaded(r[0]) for r in rows], mat


def bad_files(con: sqlite3.Connection, root: str) -> list[tuple[str, str]]:
    rows = con.execute("SELECT path, reason FROM files WHERE root=? AND status='bad' ORDER BY path",
                       (stored(root),)).fetchall()
    return [(loaded(p), reason) for p, reason in rows]


def known_files(con: sqlite3.Connection, root: str) -> dict[str, tuple]:
    """path -> (size, mtime_ns, hash, status) of every row under `root`."""
    return {loaded(p): (s, m, h, st) for p, s, m, h, st in con.execute(
        "SELECT path, size, mtime_ns, hash, status FROM files WHERE root=?", (stored(root),))}


def now() -> float:
    return time.time()
