"""Hugging Face downloads through huggingface_hub itself (`hf_hub_download`, `snapshot_download`).

The library owns the cache layout (blobs/, snapshots/, refs/, .no_exist/, trees/), the token
(HF_TOKEN or `hf auth login`), mirrors (HF_ENDPOINT), etag revalidation and Xet storage, so
transformers, timm, open_clip and diffusers share the files byte for byte. What is ours:

- the job interface: the blocking call runs on a worker thread; its progress bars (a
  `tqdm_class`) post byte counts to a queue that the generator turns into Progress;
- Stop: closing the generator sets an event, and the bridge bar raises `_Cancelled` inside
  the worker on its next update (the library then deletes its temporary file);
- the catalogue's sha256, free disk space and fast failures, checked with the library's
  `get_hf_file_metadata` (one HEAD, no retries) before the download starts;
- failure messages: library, httpx and OS exceptions become engine.downloads.errors.

Endpoint, cache folder and offline mode are read from the environment at each call (the
library reads them once, at import), so a changed HF_ENDPOINT/HF_HOME/HF_HUB_OFFLINE counts.
"""
from __future__ import annotations

import errno
import hashlib
import queue
import shutil
import threading
import time
from pathlib import Path
from typing import Callable, Generator, TypeVar

import huggingface_hub
from huggingface_hub import constants as hf_constants
from huggingface_hub import errors as hf_errors
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
from huggingface_hub.utils import filter_repo_objects
from huggingface_hub.utils import tqdm as hf_tqdm

from engine.downloads import caches, http
from engine.downloads.errors import ChecksumError, DiskFullError, DownloadError, OfflineError
from engine.jobs import Progress

T = TypeVar("T")

# Bytes per progress update (and so the most a Stop waits for): the library's 10 MB would
# leave the Jobs dock still for 10 s on a 1 MB/s line. A read granularity only; files are identical.
hf_constants.DOWNLOAD_CHUNK_SIZE = min(hf_constants.DOWNLOAD_CHUNK_SIZE, 1 << 20)

_METADATA_TIMEOUT = 30.0
_HASH_CHUNK = 1 << 20


class _Cancelled(Exception):
    """Raised inside the worker by the progress bridge once the job was stopped."""


# --------------------------------------------------------------------------- the progress bridge
class _Tally:
    """What the worker's bars report, read by the generator: bytes done, bytes expected."""

    def __init__(self, free_space_folder: Path):
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.cancel = threading.Event()
        self.folder = free_space_folder
        self.total: int | None = None  # bytes to download, where known before the bars say

    def bar_class(self) -> type:
        tally = self

        class _Bridge(hf_tqdm):
            """A silent tqdm whose byte updates go to the tally; it stops the worker on Stop."""

            def __init__(self, *args, **kwargs):
                name = kwargs.get("name") or ""
                # snapshot_download's ".transfer" bars repeat the bytes its main bar counts
                self._counts = kwargs.get("unit") == "B" and not name.endswith(".transfer")
                kwargs["disable"] = True
                super().__init__(*args, **kwargs)
                self._done = int(kwargs.get("initial") or 0)  # a disabled tqdm does not count
                self._posted_total = None
                self._post(0)

            def update(self, n=1):
                if tally.cancel.is_set():
                    raise _Cancelled()
                self._post(int(n or 0))
                return super().update(n)

            def _post(self, n: int) -> None:
                if not self._counts:
                    return
                total = int(self.total) if self.total else None
                if n == 0 and total == self._posted_total:
                    return
                if total != self._posted_total and total:
                    tally.check_space(total - self._done)
                self._done += n
                self._posted_total = total
                tally.queue.put((id(self), n, total))

        return _Bridge

    def check_space(self, needed: int) -> None:
        """Refuse before writing what cannot fit (the library itself only warns)."""
        folder = next((p for p in (self.folder, *self.folder.parents) if p.is_dir()), None)
        try:
            free = shutil.disk_usage(folder).free  # the cache folder may not exist yet
        except (OSError, TypeError):
            return
        if needed + http.SPACE_MARGIN > free:
            raise DiskFullError(
                f"not enough disk space in {self.folder}: the download needs {http._mb(needed)} MB but only "
                f"{http._mb(free)} MB are free. Free up space on that drive (or point HF_HOME at a bigger one) "
                "and try again.", needed=needed, free=free, path=str(self.folder))


class _LibraryOnline:
    """huggingface_hub online while a download runs, whatever HF_HUB_OFFLINE was at its import.

    Only entered when HF_HUB_OFFLINE is unset now; the library's own value comes back when the
    last running download ends, so other library users see no change.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._saved = False

    def __enter__(self):
        with self._lock:
            if self._users == 0:
                self._saved = hf_constants.HF_HUB_OFFLINE
                hf_constants.HF_HUB_OFFLINE = False
            self._users += 1

    def __exit__(self, *exc):
        with self._lock:
            self._users -= 1
            if self._users == 0:
                hf_constants.HF_HUB_OFFLINE = self._saved


_library_online = _LibraryOnline()


def _in_worker(work: Callable[[type], T], tally: _Tally, what: str) -> Generator[Progress, None, T]:
    """Run `work(bar_class)` on a thread; yield Progress about 10 times a second until it ends.

    Closing this generator (the engine's Stop) returns at once; the worker stops on its next
    progress update. The worker's exception is re-raised here (`_map_errors` words it).
    """
    outcome: dict = {}

    def run() -> None:
        try:
            with _library_online:
                outcome["value"] = work(tally.bar_class())
        except BaseException as exc:  # noqa: BLE001 - handed to the generator, which maps it
            outcome["error"] = exc
        finally:
            tally.queue.put(None)

    worker = threading.Thread(target=run, name="patchwork-hf-download", daemon=True)
    worker.start()
    done: dict[int, int] = {}
    totals: dict[int, int | None] = {}
    ticker = http._Ticker()
    shown = 0.0
    finished = False
    try:
        while not finished:
            deadline = time.monotonic() + http.TICK
            while (left := deadline - time.monotonic()) > 0:
                try:
                    item = tally.queue.get(timeout=left)
                except queue.Empty:
                    break
                if item is None:
                    finished = True
                    break
                bar, n, total = item
                done[bar] = done.get(bar, 0) + n
                totals[bar] = total
            if finished and "error" in outcome:
                break
            got = sum(done.values())
            expected = tally.total
            if expected is None and totals and all(totals.values()):
                expected = sum(totals.values())
            p = http._progress(got, expected, ticker.rate(got))
            fraction = 1.0 if finished else p.fraction
            if fraction is not None:  # never step back (a server that ignored Range restarts a file)
                shown = fraction = max(shown, fraction)
            yield Progress(fraction, f"{what}: {p.message}", got, expected)
    finally:
        if not finished:
            tally.cancel.set()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# --------------------------------------------------------------------------- errors
def _root_cause(exc: BaseException) -> BaseException:
    """The OSError under httpx's wrappers (ConnectError -> httpcore -> ConnectionRefusedError)."""
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and getattr(cur, "errno", None) is not None:
            return cur
        if isinstance(cur, TimeoutError) or type(cur).__name__.endswith("Timeout"):
            return TimeoutError(str(cur))
        cur = cur.__cause__ or cur.__context__
    return exc


def _offline_error(repo_id: str, what: str) -> OfflineError:
    return OfflineError(
        f"offline mode is on (HF_HUB_OFFLINE is set) and {what} of {repo_id} is not in the Hugging Face cache "
        f"({caches.hf_hub_cache()}): unset HF_HUB_OFFLINE to download it, or copy that cache folder from a "
        f"machine that has it (`hf download {repo_id}`).")


def _as_download_error(exc: BaseException, repo_id: str, what: str, url: str) -> BaseException:
    """A library/httpx/OS failure as the DownloadError that says what to do."""
    if isinstance(exc, DownloadError) or not isinstance(exc, Exception):
        return exc
    if isinstance(exc, (OfflineModeIsEnabled, LocalEntryNotFoundError)) and caches.hf_offline():
        return _offline_error(repo_id, what)
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return http.status_error(exc.response.status_code, str(exc.response.url), exc.response.headers)
    cause = _root_cause(exc)
    if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return DiskFullError(
            f"disk full while downloading {what} of {repo_id} into {caches.hf_hub_cache()}: free up space on that "
            "drive (or point HF_HOME at a bigger one) and run the download again.", url=url,
            path=str(caches.hf_hub_cache()))
    if isinstance(cause, OSError) and cause.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        cache = caches.hf_hub_cache()
        return DownloadError(f"cannot write the Hugging Face cache {cache} ({cause.strerror or cause}): check that "
                             "the folder is writable, or point HF_HOME elsewhere.", url=url, path=str(cache))
    if cause is not exc or type(exc).__module__.startswith(("httpx", "httpcore")):
        return http.network_error(cause, url)
    said = " ".join(str(exc).split())  # the library's messages may span lines
    return DownloadError(f"download of {what} of {repo_id} from {caches.hf_endpoint()} failed "
                         f"({type(exc).__name__}: {said}); check the connection and HF_ENDPOINT, and try again.",
                         url=url)


def _map_errors(gen: Generator[Progress, None, T], repo_id: str, what: str, url: str) -> Generator[Progress, None, T]:
    try:
        return (yield from gen)
    except Exception as exc:
        mapped = _as_download_error(exc, repo_id, what, url)
        if mapped is exc:
            raise
        raise mapped from exc


# --------------------------------------------------------------------------- checksum
def _sha256_of(path: Path, cancel: threading.Event) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_CHUNK):
            if cancel.is_set():
                raise _Cancelled()
            h.update(block)
    return h.hexdigest()


def _checksum_error(repo_id: str, filename: str, actual: str, expected: str, url: str, tail: str) -> ChecksumError:
    return ChecksumError(
        f"{repo_id}/{filename} on the hub has sha256 {actual[:16]}…, but Patchwork expects {expected[:16]}…: "
        f"the file was changed upstream{tail}. Update Patchwork (or pick another revision).",
        expected, actual, url=url)


def _remove_cached(pointer: Path) -> None:
    """Drop a file that failed its checksum: the snapshot link and the blob it points to."""
    blob = pointer.resolve()
    for p in (pointer, blob):
        try:
            p.unlink()
        except OSError:
            pass


# --------------------------------------------------------------------------- downloads
def _check_filename(filename: str) -> None:
    parts = filename.split("/")
    if not filename or filename.startswith("/") or "\\" in filename or any(p in ("", ".", "..") for p in parts):
        raise DownloadError(f"invalid file name {filename!r} in a Hugging Face repo: it must be a relative path "
                            "without '..'.")


def resolve_url(repo_id: str, filename: str, revision: str = "main") -> str:
    """The hub URL of one file, under the HF_ENDPOINT of now."""
    return huggingface_hub.hf_hub_url(repo_id, filename, revision=revision, endpoint=caches.hf_endpoint())


def download_hf_file(repo_id: str, filename: str, revision: str = "main",
                     sha256: str | None = None) -> Generator[Progress, None, Path]:
    """One file of a model repo into the HF cache (hf_hub_download); returns its snapshot path.

    Offline (HF_HUB_OFFLINE), only the cache is looked at and nothing is sent.
    """
    _check_filename(filename)
    expected = http.normalise_sha256(sha256)
    url = resolve_url(repo_id, filename, revision)
    common = dict(revision=revision, cache_dir=caches.hf_hub_cache(), endpoint=caches.hf_endpoint())
    if caches.hf_offline():
        try:
            return Path(huggingface_hub.hf_hub_download(repo_id, filename, local_files_only=True, **common))
        except LocalEntryNotFoundError:
            raise _offline_error(repo_id, filename) from None
    tally = _Tally(caches.hf_hub_cache())

    def work(bar_class: type) -> Path:
        # One HEAD without retries: a refused or missing file fails now, not after the library's
        # ~20 s of backoff; a known size is checked against free space; a changed LFS file is
        # refused before any byte is downloaded.
        meta = huggingface_hub.get_hf_file_metadata(url, timeout=_METADATA_TIMEOUT, endpoint=common["endpoint"])
        etag = (meta.etag or "").lower()
        if expected and len(etag) == 64 and not etag.startswith(expected):
            raise _checksum_error(repo_id, filename, etag, expected, url, "")
        cached = huggingface_hub.try_to_load_from_cache(repo_id, filename, common["cache_dir"],
                                                        meta.commit_hash or revision)
        if meta.size is not None and not isinstance(cached, str):
            tally.check_space(meta.size)
        if tally.cancel.is_set():
            raise _Cancelled()
        path = Path(huggingface_hub.hf_hub_download(repo_id, filename, tqdm_class=bar_class,
                                                    etag_timeout=_METADATA_TIMEOUT, **common))
        if expected:
            actual = _sha256_of(path, tally.cancel)
            if not actual.startswith(expected):
                _remove_cached(path)
                raise _checksum_error(repo_id, filename, actual, expected, url,
                                      " or was damaged on the way; it was removed from the cache")
        return path

    return (yield from _map_errors(_in_worker(work, tally, filename), repo_id, filename, url))


def download_hf_snapshot(repo_id: str, allow_patterns: list[str],
                         revision: str = "main") -> Generator[Progress, None, Path]:
    """The files of a repo matching any of `allow_patterns` (snapshot_download); returns the snapshot folder."""
    patterns = [p.strip() for p in allow_patterns if p.strip()]
    common = dict(revision=revision, cache_dir=caches.hf_hub_cache(), endpoint=caches.hf_endpoint(),
                  allow_patterns=patterns)
    what = f"revision {revision!r}"
    if caches.hf_offline():
        try:
            return Path(huggingface_hub.snapshot_download(repo_id, local_files_only=True, **common))
        except (LocalEntryNotFoundError, getattr(hf_errors, "IncompleteSnapshotError", LocalEntryNotFoundError)):
            raise _offline_error(repo_id, what) from None
    url = f"{caches.hf_endpoint()}/api/models/{repo_id}/revision/{revision}"
    tally = _Tally(caches.hf_hub_cache())

    def work(bar_class: type) -> Path:
        # The file list with sizes first (one request, no retries): the patterns are checked and the
        # Jobs dock gets a total before any byte, which snapshot_download's bars only learn file by file.
        info = huggingface_hub.HfApi(endpoint=common["endpoint"]).model_info(
            repo_id, revision=revision, files_metadata=True, timeout=_METADATA_TIMEOUT)
        sizes = {s.rfilename: s.size for s in info.siblings or []}
        wanted = list(filter_repo_objects(sizes, allow_patterns=patterns))
        if not wanted:
            raise DownloadError(f"no file of {repo_id} (revision {revision}) matches {', '.join(allow_patterns)}: "
                                "the repo layout changed or the patterns are wrong.", url=url)
        missing = [n for n in wanted if not isinstance(
            huggingface_hub.try_to_load_from_cache(repo_id, n, common["cache_dir"], info.sha), str)]
        if all(sizes[n] is not None for n in missing):
            tally.total = sum(sizes[n] for n in missing)
            tally.check_space(tally.total)
        if tally.cancel.is_set():
            raise _Cancelled()
        return Path(huggingface_hub.snapshot_download(repo_id, tqdm_class=bar_class,
                                                      etag_timeout=_METADATA_TIMEOUT, **common))

    return (yield from _map_errors(_in_worker(work, tally, f"{repo_id} files"), repo_id, what, url))
