"""Resumable, cancellable, verified, atomic HTTP downloads (stdlib only).

`download_file` is a job-style generator: it yields Progress (at most ~10 a second, at
least every 0.2 s of wall time, even while the server is silent) and returns the path.
The network is read on a small worker thread that hands chunks over a bounded queue;
the generator writes them, so closing the generator (the engine's cancel) stops the
download at once: the worker's socket is shut down and the `.part` file stays for resume.

Bytes go to `<dest>.part`; only a complete, verified file is renamed onto `dest`.
"""
from __future__ import annotations

import errno
import hashlib
import os
import queue
import re
import shutil
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any, Callable, Generator, TypeVar
from urllib.parse import urlsplit

from engine.downloads import caches
from engine.downloads.errors import (
    ChecksumError,
    ConnectionRefusedDownloadError,
    DiskFullError,
    DownloadError,
    HTTPStatusError,
    OfflineError,
)
from engine.jobs import Progress

T = TypeVar("T")

MB = 1_000_000
TICK = 0.1  # seconds between Progress events (at most ~10 a second)
SPACE_MARGIN = 4 * 2**20  # bytes kept free beyond the file itself
_QUEUE_CHUNKS = 64  # read-ahead of the worker thread, in chunks
_USER_AGENT = "patchwork-downloader/1 (python-urllib)"


# --------------------------------------------------------------------------- small helpers
def part_path(dest: Path) -> Path:
    """Where the bytes of `dest` accumulate until the download is complete."""
    return dest.parent / (dest.name + ".part")


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, with the scheme's default port."""
    p = urlsplit(url)
    return p.scheme.lower(), (p.hostname or "").lower(), p.port or {"http": 80, "https": 443}.get(p.scheme, 0)


def _host_port(url: str) -> str:
    _, host, port = origin(url)
    return f"{host}:{port}"


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / MB:.1f}"


def relay(gen: Generator[Any, None, T], fn: Callable[[Any], Any]) -> Generator[Any, None, T]:
    """`yield from gen`, passing each yielded item through `fn`; closing this closes `gen`."""
    try:
        while True:
            try:
                item = next(gen)
            except StopIteration as stop:
                return stop.value
            yield fn(item)
    finally:
        gen.close()


def normalise_sha256(sha256: str | None) -> str | None:
    """A full SHA-256 hex digest or a prefix of at least 8 hex digits (torchvision style)."""
    if sha256 is None:
        return None
    s = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{8,64}", s):
        raise ValueError(f"sha256 must be 8 to 64 hex digits, got {sha256!r}")
    return s


class _Ticker:
    """When the next Progress is due; and the transfer rate over the last few seconds."""

    def __init__(self):
        self.last = time.monotonic()
        self._samples: deque[tuple[float, int]] = deque()

    def due(self) -> bool:
        return time.monotonic() - self.last >= TICK

    def mark(self) -> None:
        self.last = time.monotonic()

    def rate(self, done: int) -> float | None:
        now = time.monotonic()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > 3.0:
            self._samples.popleft()
        t0, d0 = self._samples[0]
        return (done - d0) / (now - t0) if now - t0 >= 0.3 else None


def _progress(done: int, total: int | None, rate: float | None) -> Progress:
    text = f"{_mb(done)} / {_mb(total)} MB" if total else f"{_mb(done)} MB"
    if rate is not None:
        text += f" · {rate / MB:.1f} MB/s"
    fraction = min(1.0, done / total) if total else None
    return Progress(fraction, text, done, total)


# --------------------------------------------------------------------------- the worker thread
class _KeepAuthOnSameOrigin(urllib.request.HTTPRedirectHandler):
    """Follow redirects; the Authorization header (added unredirected) goes along only to the
    same origin, never to a CDN on another host (urllib would otherwise drop it everywhere)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        auth = req.unredirected_hdrs.get("Authorization")
        if new is not None and auth and origin(newurl) == origin(req.full_url):
            new.add_unredirected_header("Authorization", auth)
        return new


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Hand 3xx answers back as they are (their headers carry metadata)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _opener(follow_redirects: bool) -> urllib.request.OpenerDirector:
    # Built per request so proxy settings (http_proxy, no_proxy) are read when used.
    return urllib.request.build_opener(_KeepAuthOnSameOrigin() if follow_redirects else _NoRedirect())


def _make_request(url: str, headers: dict | None, offset: int = 0, method: str = "GET") -> urllib.request.Request:
    req = urllib.request.Request(url, method=method)
    req.add_header("User-Agent", _USER_AGENT)
    req.add_header("Accept-Encoding", "identity")  # byte counts and ranges are of the file itself
    for key, value in (headers or {}).items():
        if key.lower() == "authorization":
            req.add_unredirected_header("Authorization", value)
        else:
            req.add_header(key, value)
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    return req


def _socket_of(resp) -> socket.socket | None:
    """The socket under an http.client response (or an HTTPError wrapping one)."""
    fp = resp
    for _ in range(4):
        raw = getattr(fp, "raw", None)
        if raw is not None:
            return getattr(raw, "_sock", None)
        fp = getattr(fp, "fp", None)
        if fp is None:
            return None
    return None


class _Fetch:
    """One HTTP request run on a daemon thread. Events, in order, on a bounded queue:
    ("response", resp) then ("data", bytes)... then ("eof", None); or ("error", exc)."""

    def __init__(self, req: urllib.request.Request, timeout: float, chunk: int, follow_redirects: bool = True):
        self._q: queue.Queue = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._resp = None
        self._thread = threading.Thread(target=self._run, args=(req, timeout, chunk, follow_redirects),
                                        name="patchwork-download", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def _run(self, req, timeout, chunk, follow_redirects) -> None:
        try:
            resp = _opener(follow_redirects).open(req, timeout=timeout)
        except urllib.error.HTTPError as err:  # an answer too: 4xx/5xx (and 3xx when not following)
            resp = err
        except BaseException as exc:  # noqa: BLE001 - handed to the generator, which maps it
            self._put(("error", exc))
            return
        with self._lock:
            self._resp = resp
        try:
            if self._stop.is_set() or not self._put(("response", resp)):
                return
            read = getattr(resp, "read1", None) or resp.read
            while not self._stop.is_set():
                data = read(chunk)
                if not data:
                    self._put(("eof", None))
                    return
                if not self._put(("data", data)):
                    return
        except BaseException as exc:  # noqa: BLE001
            if not self._stop.is_set():
                self._put(("error", exc))
        finally:
            try:
                resp.close()
            except Exception:  # noqa: BLE001
                pass

    def get(self, timeout: float) -> tuple | None:
        try:
            if timeout <= 0:
                return self._q.get_nowait()
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    def next(self, ticker: _Ticker, progress: Callable[[], Progress]) -> Generator[Progress, None, tuple]:
        """The next event; meanwhile yield `progress()` every TICK seconds."""
        while True:
            item = self.get(ticker.last + TICK - time.monotonic())
            if item is not None:
                return item
            ticker.mark()
            yield progress()

    def close(self) -> None:
        """Stop the worker now: a read in progress is interrupted by shutting the socket down."""
        self._stop.set()
        with self._lock:
            resp = self._resp
        if resp is not None:
            sock = _socket_of(resp)
            if sock is not None:
                try:
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(0.2)


# --------------------------------------------------------------------------- errors
def status_error(status: int, url: str, headers: Message | None = None, *, path: Path | None = None) -> HTTPStatusError:
    """An HTTP error answer as a message saying what to do."""
    said = (headers.get("X-Error-Message") if headers is not None else None) or ""
    said = f" (the server says: {said})" if said else ""
    if status == 404:
        text = f"not found (HTTP 404) at {url}: the file was moved or the id is wrong{said}."
    elif status in (401, 403):
        text = (f"access denied (HTTP {status}) at {url}{said}: the model is gated or private (or its id is "
                "wrong). If it is gated, accept its terms on its Hugging Face page, then set HF_TOKEN to an "
                "access token (or log in with `hf auth login`) and try again.")
    elif status == 407:
        text = f"the proxy wants a login (HTTP 407) for {url}: check the user and password in your proxy settings."
    elif status == 429:
        text = f"too many requests (HTTP 429) to {url}{said}: wait a few minutes and try again."
    elif status >= 500:
        text = f"server error (HTTP {status}) at {url}{said}: the server is having trouble; try again later."
    else:
        text = f"unexpected answer (HTTP {status}) from {url}{said}."
    return HTTPStatusError(text, status, url=url, path=str(path) if path else None)


def _offline_hint(url: str, dest: Path | None) -> str:
    if dest is None:
        return "connect to the internet and try again."
    return (f"connect to the internet and try again, or fetch {url} on a connected machine and copy it "
            f"to {dest}.")


def offline_mode_error(url: str, dest: Path | None = None) -> OfflineError:
    return OfflineError(
        f"offline mode is on (HF_HUB_OFFLINE is set), so {url} was not downloaded: unset HF_HUB_OFFLINE "
        f"(and TRANSFORMERS_OFFLINE) to download it"
        + (f", or copy the file to {dest} by hand." if dest is not None else "."),
        url=url, path=str(dest) if dest else None)


def network_error(exc: BaseException, url: str, *, dest: Path | None = None, timeout: float | None = None,
                  done: int | None = None, total: int | None = None) -> DownloadError:
    """A network failure (before or during the body) as a DownloadError subclass."""
    if isinstance(exc, DownloadError):
        return exc
    reason = exc.reason if isinstance(exc, urllib.error.URLError) and not isinstance(
        exc, urllib.error.HTTPError) else exc
    host = origin(url)[1]
    code = getattr(reason, "errno", None)
    path = str(dest) if dest else None
    broke = ""
    if done is not None:
        broke = (f"the connection broke after {_mb(done)} of {_mb(total)} MB. The partial download is kept "
                 f"({part_path(dest).name if dest else '.part'}): run the download again to resume. Cause: ")
    if isinstance(reason, socket.gaierror):
        return OfflineError(f"{broke}cannot look up {host} for {url} ({reason.strerror or reason}): you seem to "
                            f"be offline (or the host name is wrong); {_offline_hint(url, dest)}", url=url, path=path)
    if isinstance(reason, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return ConnectionRefusedDownloadError(
            f"{broke}connection refused by {_host_port(url)} for {url}: nothing is listening there. If you use a "
            "mirror (HF_ENDPOINT) or a proxy, check that it is running and its address is right; otherwise "
            "try again later.", url=url, path=path)
    if code in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN):
        return OfflineError(f"{broke}network unreachable for {url}: you seem to be offline; "
                            f"{_offline_hint(url, dest)}", url=url, path=path)
    if isinstance(reason, TimeoutError):
        secs = f" within {timeout:g} s" if timeout else ""
        return DownloadError(f"{broke}no answer from {host}{secs} for {url}: the connection is too slow or the "
                             "server stalled; try again (a partial download resumes).", url=url, path=path)
    if isinstance(reason, ssl.SSLError):
        return DownloadError(f"{broke}secure connection to {host} failed for {url} ({reason}): check the "
                             "system clock and certificates, or a proxy that intercepts HTTPS.", url=url, path=path)
    what = f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__
    return DownloadError(f"{broke}download of {url} failed ({what}); check the connection and try again.",
                         url=url, path=path)


def _write_error(exc: OSError, part: Path, url: str, done: int, total: int | None) -> DownloadError:
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return DiskFullError(
            f"disk full while writing {part} ({_mb(done)} of {_mb(total)} MB of {url} written): free up space "
            f"on that drive (or point TORCH_HOME / HF_HOME at a bigger one) and run the download again; it "
            "resumes where it stopped.", url=url, path=str(part))
    return DownloadError(f"cannot write {part} ({exc.strerror or exc}): check that the folder is writable.",
                         url=url, path=str(part))


def _check_space(folder: Path, needed: int | None, reclaim: int, url: str, dest: Path) -> None:
    """Refuse a download that cannot fit, before writing anything."""
    if needed is None:
        return
    try:
        free = shutil.disk_usage(folder).free + reclaim
    except OSError:
        return
    if needed + SPACE_MARGIN > free:
        raise DiskFullError(
            f"not enough disk space for {dest.name} from {url}: it needs {_mb(needed)} MB but only {_mb(free)} MB "
            f"are free in {folder}. Free up space on that drive (or point TORCH_HOME / HF_HOME at a bigger "
            "one) and try again.", needed=needed, free=free, url=url, path=str(dest))


def _content_length(headers: Message) -> int | None:
    try:
        value = int(headers.get("Content-Length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _content_range(headers: Message) -> tuple[int | None, int | None]:
    """(first byte, total) from `Content-Range: bytes a-b/total` or `bytes */total`."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", headers.get("Content-Range", "") or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


# --------------------------------------------------------------------------- small requests
@dataclass(frozen=True)
class Response:
    url: str
    status: int
    headers: Message
    body: bytes


def request(url: str, *, method: str = "GET", headers: dict | None = None, timeout: float = 30,
            follow_redirects: bool = True, max_bytes: int = 64 * MB) -> Generator[Progress, None, Response]:
    """A small request (HEAD, JSON API): yields Progress while waiting, returns the whole answer.

    HTTP error statuses are returned, not raised (see `status_error`); network failures raise.
    """
    if caches.hf_offline():
        raise offline_mode_error(url)
    fetch = _Fetch(_make_request(url, headers, 0, method), timeout, 1 << 16, follow_redirects)
    ticker = _Ticker()
    waiting = Progress(None, f"contacting {origin(url)[1]}…")
    try:
        kind, resp = yield from fetch.next(ticker, lambda: waiting)
        if kind == "error":
            raise network_error(resp, url, timeout=timeout)
        body = bytearray()
        while True:
            kind, payload = yield from fetch.next(ticker, lambda: waiting)
            if kind == "data":
                body += payload
                if len(body) > max_bytes:
                    raise DownloadError(f"the answer from {url} is larger than {_mb(max_bytes)} MB; "
                                        "is this the right server?", url=url)
            elif kind == "eof":
                break
            else:
                raise network_error(payload, url, timeout=timeout)
        return Response(getattr(resp, "url", None) or url, int(resp.status), resp.headers, bytes(body))
    finally:
        fetch.close()


# --------------------------------------------------------------------------- downloads
def _hash_part(part: Path, length: int, hasher, ticker: _Ticker) -> Generator[Progress, None, None]:
    """Feed the first `length` bytes of an existing .part to `hasher` (yielding while it reads)."""
    left = length
    with open(part, "rb") as f:
        while left > 0:
            data = f.read(min(left, 1 << 20))
            if not data:
                raise DownloadError(f"{part} shrank while it was being read; run the download again.",
                                    path=str(part))
            hasher.update(data)
            left -= len(data)
            if ticker.due():
                ticker.mark()
                yield Progress(None, f"checking the {_mb(length)} MB already downloaded…", length - left, length)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _finish(part: Path, dest: Path, url: str, expected: str | None, hasher) -> None:
    """Verify, then atomically move the complete .part onto dest."""
    if expected is not None:
        actual = hasher.hexdigest()
        if not actual.startswith(expected):
            try:
                part.unlink()
            except OSError:
                pass
            raise ChecksumError(
                f"checksum mismatch for {dest.name} downloaded from {url}: expected sha256 {expected[:16]}…, got "
                f"{actual[:16]}…. The download was corrupted or the file changed on the server; the partial "
                "file was deleted. Try again; if it fails again, the published checksum no longer matches "
                "this file.", expected, actual, url=url, path=str(dest))
    try:
        os.replace(part, dest)
    except OSError as exc:
        raise DownloadError(f"cannot move {part.name} into place as {dest} ({exc.strerror or exc}).",
                            url=url, path=str(dest)) from exc
    try:  # make the rename itself durable
        fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def download_file(url: str, dest: Path, *, sha256: str | None = None, size_bytes: int | None = None,
                  headers: dict | None = None, chunk: int = 1 << 16,
                  timeout: float = 30) -> Generator[Progress, None, Path]:
    """Download `url` to `dest`, resuming `<dest>.part` if present; return `dest`.

    sha256: full hex digest or a prefix of >= 8 hex digits, checked before `dest` appears.
    size_bytes: the expected size, used when the server sends no Content-Length.
    headers: extra request headers; an Authorization header is only sent to `url`'s own origin.
    """
    dest = Path(dest)
    expected = normalise_sha256(sha256)
    if caches.hf_offline():
        raise offline_mode_error(url, dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the folder {dest.parent} for {dest.name} ({exc.strerror or exc}): "
                            "check that it is writable.", url=url, path=str(dest)) from exc
    part = part_path(dest)
    host = origin(url)[1]
    for _attempt in range(3):  # a stale .part can cost one restart from zero
        try:
            offset = os.stat(part).st_size
        except OSError:
            offset = 0
        fetch = _Fetch(_make_request(url, headers, offset), timeout, chunk)
        ticker = _Ticker()
        try:
            connecting = Progress(None, f"connecting to {host}…")
            kind, resp = yield from fetch.next(ticker, lambda: connecting)
            if kind == "error":
                raise network_error(resp, url, dest=dest, timeout=timeout)
            status = int(resp.status)
            start, range_total = _content_range(resp.headers)
            if offset and status == 416:
                fetch.close()
                if range_total == offset:  # the .part already holds the whole file
                    hasher = hashlib.sha256()
                    if expected is not None:
                        yield from _hash_part(part, offset, hasher, ticker)
                    _finish(part, dest, url, expected, hasher)
                    yield Progress(1.0, f"{_mb(offset)} MB, done", offset, offset)
                    return dest
                part.unlink(missing_ok=True)  # not a prefix of this file: start again
                continue
            if status not in (200, 206):
                raise status_error(status, url, resp.headers, path=dest)
            length = _content_length(resp.headers)
            if status == 206:
                if start != offset:  # not the range we asked for
                    if not offset:
                        raise DownloadError(f"{url} answered with an unexpected byte range; try again.", url=url)
                    part.unlink(missing_ok=True)
                    continue
                total = range_total if range_total is not None else (
                    offset + length if length is not None else size_bytes)
            else:  # 200: the whole file, from byte 0 (also when the server ignored our Range)
                offset = 0
                total = length if length is not None else size_bytes
            remaining = None if total is None else max(0, total - offset)
            reclaim = 0 if offset else (part.stat().st_size if part.is_file() else 0)
            _check_space(dest.parent, remaining, reclaim, url, dest)
            hasher = hashlib.sha256()
            if offset and expected is not None:
                yield from _hash_part(part, offset, hasher, ticker)
            return (yield from _receive(fetch, ticker, part, dest, url, offset, total, expected, hasher, timeout))
        finally:
            fetch.close()
    raise DownloadError(f"{url} keeps answering with byte ranges that do not match {part.name}; delete it "
                        "and try again.", url=url, path=str(part))


def _receive(fetch: _Fetch, ticker: _Ticker, part: Path, dest: Path, url: str, offset: int, total: int | None,
             expected: str | None, hasher, timeout: float) -> Generator[Progress, None, Path]:
    done = offset
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if offset else os.O_TRUNC), 0o644)
    except OSError as exc:
        raise _write_error(exc, part, url, done, total) from exc
    try:
        ticker.rate(done)
        ticker.mark()
        yield _progress(done, total, None)
        while True:
            kind, payload = yield from fetch.next(ticker, lambda: _progress(done, total, ticker.rate(done)))
            if kind == "data":
                try:
                    _write_all(fd, payload)
                except OSError as exc:
                    raise _write_error(exc, part, url, done, total) from exc
                if expected is not None:
                    hasher.update(payload)
                done += len(payload)
                if ticker.due():
                    ticker.mark()
                    yield _progress(done, total, ticker.rate(done))
            elif kind == "eof":
                break
            else:
                raise network_error(payload, url, dest=dest, timeout=timeout, done=done, total=total)
        if total is not None and done != total:
            raise DownloadError(
                f"the connection broke after {_mb(done)} of {_mb(total)} MB of {url}. The partial download is "
                f"kept ({part.name}): run the download again to resume.", url=url, path=str(part))
        try:
            os.fsync(fd)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
                raise _write_error(exc, part, url, done, total) from exc
            if exc.errno not in (errno.EINVAL, errno.EROFS):  # fsync unsupported: nothing to flush
                raise _write_error(exc, part, url, done, total) from exc
    finally:
        os.close(fd)
    _finish(part, dest, url, expected, hasher)
    yield Progress(1.0, f"{_mb(done)} MB, done", done, done)
    return dest
