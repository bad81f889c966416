"""Checksums for weight files, so a damaged file is reported instead of mis-loaded."""
from __future__ import annotations

import hashlib

from engine.errors import ModelError


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: str, expected: str) -> None:
    try:
        actual = sha256_file(path)
    except OSError as exc:
        raise ModelError(f"cannot read weights {path}: {exc}") from None
    # A short expected value is a published prefix (torchvision names files with 8 hex digits).
    if not actual.startswith(expected.lower()) or len(expected) < 8:
        raise ModelError(f"checksum mismatch for {path}: expected sha256 {expected[:12]}…, got {actual[:12]}…; "
                         "the file is damaged: reinstall the package or delete and re-download it")
