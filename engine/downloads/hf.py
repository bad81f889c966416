"""Hugging Face downloads, written into huggingface_hub's own cache layout.

    models--org--name/
        blobs/<etag>                      the bytes (for LFS files the etag is their sha256)
        snapshots/<commit>/<filename>  -> ../../blobs/<etag>   (relative symlink; a copy where
                                                                 symlinks are not possible)
        refs/<revision>                   the commit the revision pointed to

so huggingface_hub, timm, open_clip and diffusers find the files with HF_HUB_OFFLINE=1.
The metadata request mirrors huggingface_hub's `get_hf_file_metadata`: a HEAD on
`{endpoint}/{repo}/resolve/{revision}/{filename}` that follows redirects only while they
stay on the hub, and reads X-Repo-Commit, X-Linked-Etag (or ETag) and X-Linked-Size from
the last answer (for LFS files a 302 to the CDN, which is then downloaded without the token).
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Generator
from urllib.parse import quote, urljoin

from engine.downloads import caches, http
from engine.downloads.errors import ChecksumError, DownloadError, OfflineError
from engine.jobs import Progress

_MAX_REDIRECTS = 10
_METADATA_TIMEOUT = 30.0
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class HfFileMetadata:
    commit: str
    etag: str
    size: int | None
    location: str  # where to GET the bytes (the CDN for LFS files)


# --------------------------------------------------------------------------- token and hosts
def hf_token() -> str | None:
    """HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), else the token `hf auth login` saved."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(var, "").strip():
            return os.environ[var].strip()
    path = os.environ.get("HF_TOKEN_PATH")
    if not path:
        home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
        path = Path(home).expanduser() / "token"
    try:
        token = Path(path).expanduser().read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def _headers() -> dict[str, str]:
    token = hf_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


def _hub_origins() -> set[tuple[str, str, int]]:
    return {http.origin(caches.hf_endpoint()), http.origin("https://huggingface.co"), http.origin("https://hf.co")}


def _on_hub(url: str, target: str) -> bool:
    """Same origin as `url`, or a hub host: the token may go there (never to a CDN)."""
    return http.origin(target) == http.origin(url) or http.origin(target) in _hub_origins()


def _check_filename(filename: str) -> None:
    parts = filename.split("/")
    if not filename or filename.startswith("/") or "\\" in filename or any(p in ("", ".", "..") for p in parts):
        raise DownloadError(f"invalid file name {filename!r} in a Hugging Face repo: it must be a relative path "
                            "without '..'.")


def _normalise_etag(etag: str | None) -> str | None:
    if etag is None:
        return None
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"') or None


def resolve_url(repo_id: str, filename: str, revision: str = "main") -> str:
    """The hub URL of one file (as huggingface_hub.hf_hub_url builds it)."""
    return f"{caches.hf_endpoint()}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(filename)}"


# --------------------------------------------------------------------------- metadata
def file_metadata(repo_id: str, filename: str, revision: str = "main") -> Generator[Progress, None, HfFileMetadata]:
    """HEAD the file, following redirects only while they stay on the hub."""
    url = target = resolve_url(repo_id, filename, revision)
    headers = _headers()
    for _ in range(_MAX_REDIRECTS):
        resp = yield from http.request(target, method="HEAD", headers=headers if _on_hub(url, target) else {},
                                       timeout=_METADATA_TIMEOUT, follow_redirects=False)
        location = resp.headers.get("Location")
        if 300 <= resp.status < 400 and location:
            nxt = urljoin(target, location)
            if _on_hub(url, nxt):
                target = nxt
                continue
            break
        if resp.status >= 400:
            raise http.status_error(resp.status, target, resp.headers)
        break
    else:
        raise DownloadError(f"too many redirects while resolving {url}; check HF_ENDPOINT and your proxy.", url=url)
    redirected = 300 <= resp.status < 400 and bool(location)
    commit = resp.headers.get("X-Repo-Commit")
    if not commit:
        raise DownloadError(
            f"{url} did not say which commit it serves (no X-Repo-Commit header): {caches.hf_endpoint()} does not "
            "look like a Hugging Face hub. Check HF_ENDPOINT, your proxy or firewall.", url=url)
    etag = _normalise_etag(resp.headers.get("X-Linked-Etag") or resp.headers.get("ETag"))
    if not etag:
        raise DownloadError(f"{url} sent no ETag, so the file cannot be stored in the Hugging Face cache; check "
                            "HF_ENDPOINT, your proxy or firewall.", url=url)
    for name, value in (("commit", commit), ("etag", etag)):
        if not _SAFE_NAME.fullmatch(value):
            raise DownloadError(f"{url} sent an unusable {name} {value!r}; check HF_ENDPOINT.", url=url)
    size_text = resp.headers.get("X-Linked-Size") or (None if redirected else resp.headers.get("Content-Length"))
    try:
        size = int(size_text) if size_text is not None else None
    except ValueError:
        size = None
    return HfFileMetadata(commit, etag, size, urljoin(target, location) if redirected else target)


# --------------------------------------------------------------------------- cache layout
def _link(blob: Path, pointer: Path) -> None:
    """snapshots/<commit>/<file> -> ../../blobs/<etag>, relative; a copy if symlinks fail."""
    pointer.parent.mkdir(parents=True, exist_ok=True)
    tmp = pointer.parent / f".{pointer.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        os.symlink(os.path.relpath(blob, pointer.parent), tmp)
    except (OSError, NotImplementedError):
        shutil.copyfile(blob, tmp)
    os.replace(tmp, pointer)


def _write_ref(repo_dir: Path, revision: str, commit: str) -> None:
    """refs/<revision> = commit (atomically), unless the revision is the commit itself."""
    if revision == commit:
        return
    ref = repo_dir / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    if ref.is_file() and ref.read_text() == commit:
        return
    tmp = ref.with_name(f"{ref.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(commit)
    os.replace(tmp, ref)


def _offline_error(repo_id: str, what: str) -> OfflineError:
    return OfflineError(
        f"offline mode is on (HF_HUB_OFFLINE is set) and {what} of {repo_id} is not in the Hugging Face cache "
        f"({caches.hf_hub_cache()}): unset HF_HUB_OFFLINE to download it, or copy that cache folder from a "
        f"machine that has it (`hf download {repo_id}`).")


# --------------------------------------------------------------------------- downloads
def download_hf_file(repo_id: str, filename: str, revision: str = "main",
                     sha256: str | None = None) -> Generator[Progress, None, Path]:
    """One file of a model repo into the HF cache; returns its snapshot path.

    A file already cached for `revision` is returned without any request.
    """
    _check_filename(filename)
    expected = http.normalise_sha256(sha256)
    cached = caches.hf_cached_file(repo_id, filename, revision)
    if cached is not None:
        return cached
    if caches.hf_offline():
        raise _offline_error(repo_id, filename)
    meta = yield from file_metadata(repo_id, filename, revision)
    repo_dir = caches.hf_repo_dir(repo_id)
    blob = repo_dir / "blobs" / meta.etag
    pointer = repo_dir / "snapshots" / meta.commit / filename
    lfs_sha = meta.etag.lower() if _SHA256.fullmatch(meta.etag.lower()) else None
    if expected and lfs_sha and not lfs_sha.startswith(expected):
        raise ChecksumError(
            f"{repo_id}/{filename} on the hub has sha256 {lfs_sha[:16]}…, but Patchwork expects {expected[:16]}…: "
            "the file was changed upstream. Update Patchwork (or pick another revision).",
            expected, lfs_sha, url=meta.location)
    if not blob.is_file():
        headers = _headers() if _on_hub(resolve_url(repo_id, filename, revision), meta.location) else {}
        yield from http.download_file(meta.location, blob, sha256=expected or lfs_sha, size_bytes=meta.size,
                                      headers=headers)
    try:
        _link(blob, pointer)
        _write_ref(repo_dir, revision, meta.commit)
    except OSError as exc:
        raise DownloadError(f"cannot write the Hugging Face cache entry {pointer} ({exc.strerror or exc}): "
                            "check that the folder is writable.", path=str(pointer)) from exc
    return pointer


def download_hf_snapshot(repo_id: str, allow_patterns: list[str],
                         revision: str = "main") -> Generator[Progress, None, Path]:
    """The files of a repo matching any of `allow_patterns` (fnmatch); returns the snapshot folder."""
    patterns = [p.strip() + ("*" if p.strip().endswith("/") else "") for p in allow_patterns if p.strip()]
    if caches.hf_offline():
        snap = caches.hf_cached_snapshot(repo_id, revision)
        if snap is not None:
            return snap
        raise _offline_error(repo_id, f"revision {revision!r}")
    url = f"{caches.hf_endpoint()}/api/models/{repo_id}/revision/{quote(revision, safe='')}?blobs=true"
    resp = yield from http.request(url, headers=_headers(), timeout=_METADATA_TIMEOUT)
    if resp.status >= 400:
        raise http.status_error(resp.status, url, resp.headers)
    try:
        info = json.loads(resp.body)
        commit = info["sha"]
        siblings = info.get("siblings") or []
        names = [s["rfilename"] for s in siblings]
    except (ValueError, KeyError, TypeError) as exc:
        raise DownloadError(f"{url} did not answer with a model's file list ({exc}); check HF_ENDPOINT.",
                            url=url) from exc
    if not isinstance(commit, str) or not _SAFE_NAME.fullmatch(commit):
        raise DownloadError(f"{url} sent an unusable commit {commit!r}; check HF_ENDPOINT.", url=url)
    sizes = {}
    for s in siblings:
        size = s.get("size") if isinstance(s.get("size"), int) else (s.get("lfs") or {}).get("size")
        sizes[s["rfilename"]] = size if isinstance(size, int) else None
    wanted = [n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)]
    if not wanted:
        raise DownloadError(f"no file of {repo_id} (revision {revision}) matches {', '.join(allow_patterns)}: the "
                            "repo layout changed or the patterns are wrong.", url=url)
    total = sum(sizes[n] for n in wanted) if all(sizes.get(n) is not None for n in wanted) else None
    finished = 0
    for i, name in enumerate(wanted):
        def overall(p: Progress, i=i, name=name) -> Progress:
            here = p.done or 0
            if total:
                fraction = min(1.0, (finished + here) / total)
            else:
                fraction = (i + (p.fraction or 0.0)) / len(wanted)
            return Progress(fraction, f"file {i + 1}/{len(wanted)} {name}: {p.message}",
                            finished + here, total)
        yield from http.relay(download_hf_file(repo_id, name, commit), overall)
        finished += sizes.get(name) or 0
    repo_dir = caches.hf_repo_dir(repo_id)
    _write_ref(repo_dir, revision, commit)
    done = total if total is not None else finished
    yield Progress(1.0, f"{len(wanted)} files, done", done, total)
    return repo_dir / "snapshots" / commit
