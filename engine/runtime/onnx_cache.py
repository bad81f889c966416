"""ONNX exports made once and cached by the weights' hash, and tuned ONNX Runtime sessions.

Embedding runs faster in ONNX Runtime than in eager PyTorch on a CPU (and int8 faster still),
and a query process that runs ONNX never imports torch. Each export is keyed by a short SHA-256
of the weights file, so new weights get a new export and an unchanged file is never re-exported.

Nothing here imports torch except `export_module`.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from collections.abc import Callable

from engine.paths import cache_dir

OPSET = 17


def folder() -> Path:
    return cache_dir() / "onnx"


def weights_key(weights: Path) -> str:
    """A short SHA-256 of a weights file, memoised by size and mtime (hashing 600 MB takes seconds)."""
    weights = Path(weights)
    stat = weights.stat()
    memo = folder() / f".sha-{stat.st_size}-{stat.st_mtime_ns}"
    if memo.is_file():
        return memo.read_text().strip()
    h = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    key = h.hexdigest()[:16]
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(key)
    return key


def write_once(dest: Path, write: Callable[[Path], None]) -> Path:
    """`dest`, written by write(tmp) and renamed into place unless it is already there: a crash
    or a concurrent writer never leaves a half-written model under the final name."""
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".tmp-{os.getpid()}-{dest.name}")
    try:
        write(tmp)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def export_module(module, example: tuple, dest: Path, input_names: list[str], output_names: list[str],
                  dynamic_axes: dict) -> Path:
    """torch.onnx.export of `module` (eval mode) once into `dest`."""
    import torch

    def write(tmp: Path) -> None:
        # The TorchScript exporter: it needs no onnxscript package and traces these towers
        # exactly (the parity tests); torch >= 2.9 warns that the dynamo exporter is the default.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), example, str(tmp), input_names=input_names, output_names=output_names,
                              dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False)

    return write_once(dest, write)


def session(path: Path, threads: int | None = None):
    """A CPU session with every graph optimisation and intra-op threads = usable cores (ONNX
    Runtime's default counts physical cores, which leaves SMT siblings idle on small machines)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or usable_cores()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # warnings about unused initialisers are noise to a user
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)
