"""Getting Fashion-MNIST onto a machine that lacks it: where it is, and a download job.

The download takes torchvision's own list of files, mirrors and MD5 sums
(`torchvision.datasets.FashionMNIST.mirrors` / `.resources`, about 30 MB of gzip), but
fetches them with Patchwork's resumable downloader so the Jobs dock shows progress, Stop
works at once and a stopped download resumes where it stopped. The offline route is the
Debian package `dataset-fashion-mnist`.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Generator

from engine.data import fashion_mnist
from engine.downloads.errors import ChecksumError
from engine.downloads.http import download_file, relay
from engine.jobs import Progress

#: Told to the user wherever Fashion-MNIST is missing.
OFFLINE_ROUTE = "sudo apt install dataset-fashion-mnist"
#: Sizes of torchvision's four .gz files, for a progress bar over all of them before each is opened.
_SIZES = {"train-images-idx3-ubyte.gz": 26_421_880, "train-labels-idx1-ubyte.gz": 29_515,
          "t10k-images-idx3-ubyte.gz": 4_422_102, "t10k-labels-idx1-ubyte.gz": 5_148}


@dataclass(frozen=True)
class FashionMnistStatus:
    available: bool
    where: str  # the folder the files were found in, or "" when missing
    message: str  # one line for the panel: where it is, or how to get it


def status() -> FashionMnistStatus:
    files = fashion_mnist.find_files()
    if files is not None:
        where = str(files["train"][0].parent)
        return FashionMnistStatus(True, where, f"Fashion-MNIST (70,000 images) from {where}")
    return FashionMnistStatus(False, "", "Fashion-MNIST is not on this machine: get it here (about 30 MB), "
                                         f"or offline with `{OFFLINE_ROUTE}`.")


def status_job(ctx) -> FashionMnistStatus:
    """Request "fashion_mnist_status"."""
    return status()


def torchvision_resources() -> tuple[list[str], list[tuple[str, str]]]:
    """(mirrors, [(file name, md5)]) as torchvision itself downloads Fashion-MNIST."""
    from torchvision.datasets import FashionMNIST

    return list(FashionMNIST.mirrors), [(name, md5) for name, md5 in FashionMNIST.resources]


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_job(ctx, mirrors: list[str] | None = None,
                 resources: list[tuple[str, str]] | None = None) -> Generator[Progress, None, FashionMnistStatus]:
    """Request "fashion_mnist_download": the four files into the data folder, verified by MD5.

    `mirrors` and `resources` override torchvision's (the tests serve small files of their own
    from a loopback server); $PATCHWORK_FASHION_MNIST_MIRRORS (comma-separated base URLs) names
    a mirror of one's own, as HF_ENDPOINT does for the Hub. A file that is already complete is not fetched again; a stopped
    download leaves `<file>.part`, which the next run resumes with an HTTP range request.
    """
    default_mirrors, default_resources = torchvision_resources()
    env = [m for m in os.environ.get("PATCHWORK_FASHION_MNIST_MIRRORS", "").split(",") if m.strip()]
    mirrors = list(mirrors or env or default_mirrors)
    resources = [tuple(r) for r in (resources or default_resources)]
    target = fashion_mnist.download_dir() / "FashionMNIST" / "raw"
    total = sum(_SIZES.get(name, 0) for name, _ in resources)
    done_before = 0
    for name, md5 in resources:
        dest = target / name
        if not (dest.is_file() and _md5(dest) == md5):
            yield from relay(_fetch_one(mirrors, name, dest), _overall(done_before, total, name))
            actual = _md5(dest)
            if actual != md5:
                dest.unlink(missing_ok=True)
                raise ChecksumError(f"{dest}: the downloaded file's MD5 is not torchvision's {md5}; "
                                    "it was deleted, try again", md5, actual, path=str(dest))
        done_before += _SIZES.get(name, dest.stat().st_size)
    yield Progress(1.0, "Fashion-MNIST is ready")
    return status()


def _fetch_one(mirrors: list[str], name: str, dest: Path) -> Generator[Progress, None, Path]:
    """`name` from the first mirror that answers (the last mirror's error if none does)."""
    error: Exception | None = None
    for mirror in mirrors:
        try:
            return (yield from download_file(mirror.rstrip("/") + "/" + name, dest))
        except ChecksumError:
            raise
        except Exception as exc:  # a mirror that is down: try the next one, keep the .part
            error = exc
    assert error is not None
    raise error


def _overall(done_before: int, total: int, name: str):
    """A Progress over all four files from one file's Progress."""
    def convert(p: Progress) -> Progress:
        if p.done is None or not total:
            return Progress(None, f"{name}: {p.message}")
        done = done_before + p.done
        return Progress(min(done / total, 0.999), f"Fashion-MNIST: {done / 1e6:.1f} of {total / 1e6:.1f} MB",
                        done, total)
    return convert


def ensure_downloaded() -> None:
    """Unless the files are on this machine already, run the download the Train panel's
    "Get Fashion-MNIST" runs, to its end."""
    if fashion_mnist.find_files() is None:
        for _progress in download_job(None):
            pass


def remove_download() -> None:
    """Delete the downloaded copy (not the Debian package's); used by tests and the Models menu."""
    target = fashion_mnist.download_dir() / "FashionMNIST" / "raw"
    for name in _SIZES:
        for p in (target / name, target / (name + ".part")):
            if p.exists():
                os.remove(p)
