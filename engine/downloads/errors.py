"""Why a download failed, in words a user can act on.

Every message names the URL or file concerned and says what to do next; the
engine shows them as they are (they are PatchworkErrors).
"""
from __future__ import annotations

from engine.errors import PatchworkError


class DownloadError(PatchworkError):
    """A download that did not complete. `url` and `path` say which one, where known."""

    def __init__(self, message: str, *, url: str | None = None, path: str | None = None):
        super().__init__(message)
        self.url = url
        self.path = path


class OfflineError(DownloadError):
    """Offline mode is on (HF_HUB_OFFLINE), or the network cannot be reached at all."""


class HTTPStatusError(DownloadError):
    """The server answered with an error status (404, 401/403, 5xx, ...)."""

    def __init__(self, message: str, status: int, *, url: str | None = None, path: str | None = None):
        super().__init__(message, url=url, path=path)
        self.status = status


class ConnectionRefusedDownloadError(DownloadError):
    """Nothing listens at the host and port (a stopped mirror, a wrong HF_ENDPOINT or proxy)."""


class ChecksumError(DownloadError):
    """The bytes received are not the published file."""

    def __init__(self, message: str, expected: str, actual: str, *, url: str | None = None,
                 path: str | None = None):
        super().__init__(message, url=url, path=path)
        self.expected = expected
        self.actual = actual


class DiskFullError(DownloadError):
    """Not enough free space for the file (checked before writing, or hit while writing)."""

    def __init__(self, message: str, *, needed: int | None = None, free: int | None = None,
                 url: str | None = None, path: str | None = None):
        super().__init__(message, url=url, path=path)
        self.needed = needed
        self.free = free
