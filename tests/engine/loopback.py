"""A real HTTP server on 127.0.0.1 for download tests: files, byte ranges, a tiny hub.

Nothing here is a mock of the download path: the client under test speaks real HTTP over
real sockets to this server. The server can misbehave on purpose (cut or stall the
connection after N bytes, trickle bytes slowly, delay its answer, declare a bogus length,
ignore Range) and records every request it sees.

Routes:
  /<anything>                              bytes from `files` (GET/HEAD, Range -> 206/416)
  /<org>/<name>/resolve/<rev>/<filename>   hub file, X-Repo-Commit; for an "lfs" repo a 302 to the
                                           "CDN" http://localhost:<port>/cdn/<sha256> (another origin)
                                           with X-Linked-Etag (= sha256) and X-Linked-Size; otherwise
                                           the bytes in place (Range too), ETag = the git blob id
  /cdn/<sha256>                            the blob bytes
  any path in behaviour.redirect           302 to the URL given there
  /api/models/<org>/<name>/revision/<rev>  {"id", "sha", "siblings": [{"rfilename", "size", "lfs"}]}
                                           (snapshot_download's repo_info)
  /api/models/<org>/<name>/tree/<rev>      [{"type": "file", "path", "size", "oid", "lfs"}] (its list_repo_tree;
                                           one page, no Link header)

These are the endpoints huggingface_hub's hf_hub_download and snapshot_download call; no
X-Xet-* header is ever sent, so the library takes its plain HTTP path (GET with Range).
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]

    def header(self, name: str) -> str | None:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None


@dataclass
class HubRepo:
    commit: str
    files: dict[str, bytes]
    lfs: bool = True  # answer resolve with a 302 to the CDN, like the real hub for LFS files


@dataclass
class Behaviour:
    """Ways the server misbehaves, per path (the path without its query)."""

    cut_after: dict[str, int] = field(default_factory=dict)  # send N body bytes, then close (once)
    stall_after: dict[str, tuple[int, float]] = field(default_factory=dict)  # send N bytes, then go silent
    throttle: dict[str, tuple[int, float]] = field(default_factory=dict)  # (chunk bytes, sleep between)
    delay: dict[str, float] = field(default_factory=dict)  # seconds before answering at all
    declared_length: dict[str, int] = field(default_factory=dict)  # a Content-Length (X-Linked-Size) that lies
    ignore_range: set[str] = field(default_factory=set)  # answer 200 with the whole file to a Range
    status: dict[str, int] = field(default_factory=dict)  # answer with this status, no body
    redirect: dict[str, str] = field(default_factory=dict)  # 302 to this URL ("{port}" is filled in)


def git_blob_id(data: bytes) -> str:
    """The hub's ETag of a non-LFS file: git's blob id."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class LoopbackServer:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.repos: dict[str, HubRepo] = {}
        self.behaviour = Behaviour()
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "LoopbackServer":
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="loopback-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # ------------------------------------------------------------------ hub
    def add_repo(self, repo_id: str, files: dict[str, bytes], *, lfs: bool = True, commit: str | None = None) -> HubRepo:
        commit = commit or hashlib.sha1(repo_id.encode()).hexdigest()
        repo = HubRepo(commit, dict(files), lfs)
        self.repos[repo_id] = repo
        return repo

    def blob(self, sha: str) -> bytes | None:
        for repo in self.repos.values():
            for data in repo.files.values():
                if hashlib.sha256(data).hexdigest() == sha:
                    return data
        return None

    # ------------------------------------------------------------------ records
    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def seen(self, path_part: str | None = None, method: str | None = None) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests
                    if (path_part is None or path_part in r.path) and (method is None or r.method == method)]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # clients that hang up are expected here
        pass


class _Handler(BaseHTTPRequestHandler):
    server_owner: LoopbackServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - keep test output clean
        pass

    def do_HEAD(self):
        self._route(head=True)

    def do_GET(self):
        self._route(head=False)

    # ------------------------------------------------------------------ routing
    def _route(self, head: bool) -> None:
        owner = self.server_owner
        path = urlsplit(self.path).path
        owner.record(Seen(self.command, self.path, dict(self.headers.items())))
        self.close_connection = True
        b = owner.behaviour
        if path in b.delay:
            time.sleep(b.delay[path])
        if path in b.status:
            return self._empty(b.status[path])
        if path in b.redirect:
            return self._empty(302, {"Location": b.redirect[path].format(port=owner.port)})
        parts = [unquote(p) for p in path.lstrip("/").split("/")]
        if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "revision":
            return self._api(parts[2] + "/" + parts[3], parts[5], head)
        if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "tree":
            return self._tree(parts[2] + "/" + parts[3], parts[5], head)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]), head)
        if len(parts) == 2 and parts[0] == "cdn":
            data = owner.blob(parts[1])
            if data is None:
                return self._empty(404)
            return self._serve(path, data, head, {"ETag": f'"{parts[1]}"'})
        if path in owner.files:
            return self._serve(path, owner.files[path], head, {})
        return self._empty(404)

    def _api(self, repo_id: str, rev: str, head: bool) -> None:
        repo = self.server_owner.repos.get(repo_id)
        if repo is None:
            return self._empty(401, {"X-Error-Code": "RepoNotFound"})
        if rev not in ("main", repo.commit):
            return self._empty(404, {"X-Error-Code": "RevisionNotFound"})
        siblings = [{"rfilename": name, "size": len(data),
                     **({"lfs": {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}}
                        if repo.lfs else {})}
                    for name, data in repo.files.items()]
        self._json({"id": repo_id, "sha": repo.commit, "siblings": siblings}, head)

    def _tree(self, repo_id: str, rev: str, head: bool) -> None:
        repo = self.server_owner.repos.get(repo_id)
        if repo is None:
            return self._empty(401, {"X-Error-Code": "RepoNotFound"})
        if rev not in ("main", repo.commit):
            return self._empty(404, {"X-Error-Code": "RevisionNotFound"})
        entries = [{"type": "file", "path": name, "size": len(data), "oid": git_blob_id(data),
                    **({"lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}}
                       if repo.lfs else {})}
                   for name, data in repo.files.items()]
        self._json(entries, head)

    def _json(self, value, head: bool) -> None:
        body = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _resolve(self, repo_id: str, rev: str, filename: str, head: bool) -> None:
        repo = self.server_owner.repos.get(repo_id)
        if repo is None:
            return self._empty(401, {"X-Error-Code": "RepoNotFound",
                                     "X-Error-Message": "Repository not found"})
        if rev not in ("main", repo.commit):
            return self._empty(404, {"X-Error-Code": "RevisionNotFound"})
        data = repo.files.get(filename)
        if data is None:
            return self._empty(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.commit,
                                     "X-Error-Message": "Entry not found"})
        if repo.lfs:  # a 302 to the CDN that carries the LFS sha256 and size
            sha = hashlib.sha256(data).hexdigest()
            size = self.server_owner.behaviour.declared_length.get(urlsplit(self.path).path, len(data))
            return self._empty(302, {
                "X-Repo-Commit": repo.commit, "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(size),
                "Location": f"http://localhost:{self.server_owner.port}/cdn/{sha}?X-Amz-Signature=loopback"})
        # a regular git file: served in place, its ETag the git blob id (not a sha256)
        meta = {"X-Repo-Commit": repo.commit, "ETag": f'"{git_blob_id(data)}"'}
        return self._serve(urlsplit(self.path).path, data, head, meta)

    # ------------------------------------------------------------------ answers
    def _empty(self, status: int, headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    def _serve(self, key: str, data: bytes, head: bool, extra: dict) -> None:
        b = self.server_owner.behaviour
        start, end, status = 0, len(data) - 1, 200
        rng = self.headers.get("Range")
        if rng and key not in b.ignore_range:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if m:
                start = int(m.group(1))
                end = min(int(m.group(2)), len(data) - 1) if m.group(2) else len(data) - 1
                if start >= len(data):
                    return self._empty(416, {"Content-Range": f"bytes */{len(data)}"})
                status = 206
        body = data[start:end + 1]
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(b.declared_length.get(key, len(body))))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Connection", "close")
        self.end_headers()
        if head:
            return
        limit = len(body)
        cut = b.cut_after.pop(key, None)
        if cut is not None:
            limit = min(limit, cut)
        stall = b.stall_after.pop(key, None)
        if stall is not None:
            limit = min(limit, stall[0])
        chunk, pause = b.throttle.get(key, (1 << 16, 0.0))
        try:
            sent = 0
            while sent < limit:
                n = min(chunk, limit - sent)
                self.wfile.write(body[sent:sent + n])
                sent += n
                if pause:
                    time.sleep(pause)
            self.wfile.flush()
            if stall is not None:
                time.sleep(stall[1])
        except (BrokenPipeError, ConnectionResetError):
            pass
