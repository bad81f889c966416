"""Export a run trained here to ONNX, check it with onnxruntime, and write its JSON sidecar.

    model.onnx          the graph (CLIP/LiT: model.image.onnx and model.text.onnx, plus
                        model.tokenizer.json, the text tower's tokenizer)
    model.json          labels, preprocessing, the domain it was trained on, the SHA-256 of
                        the weights and of each graph, and the check's figures

Each graph is written under a temporary name, run with onnxruntime on sample inputs and
compared with PyTorch; only when every graph is within TOLERANCE (max abs difference) are
the files renamed into place. A failed check deletes them and says by how much it missed.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.cli_support import parent_folder_problem
from engine.errors import ExportError, PatchworkError
from engine.jobs import Progress

TOLERANCE = 1e-4
DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 14, 20  # scaled_dot_product_attention needs 14; 20 is what torch's TorchScript exporter writes


@dataclass(frozen=True)
class PartCheck:
    file: str
    output: str
    max_abs_diff: float
    samples: int


@dataclass(frozen=True)
class ExportResult:
    sidecar: str
    files: tuple[str, ...]
    family: str
    checks: tuple[PartCheck, ...]
    tolerance: float
    seconds: float

    @property
    def max_abs_diff(self) -> float:
        return max(c.max_abs_diff for c in self.checks)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dest_problem(dest: str) -> str | None:
    """Why `dest` cannot be an ONNX file to write, or None."""
    p = Path(dest)
    if p.suffix.lower() != ".onnx":
        return f"{dest}: the file name should end in .onnx"
    if p.is_dir():
        return f"{dest}: is a folder; give a file name such as {p / 'model.onnx'}"
    return parent_folder_problem(dest, p)


def file_names(dest: Path, suffixes: list[str]) -> dict[str, Path]:
    """{part suffix: file}: model.onnx alone, or model.image.onnx / model.text.onnx."""
    if suffixes == [""]:
        return {"": dest}
    return {s: dest.with_name(f"{dest.stem}.{s}.onnx") for s in suffixes}


def _trace(part, path: Path, opset: int) -> None:
    import torch

    args = tuple(part.trace_inputs.values())
    # The TorchScript exporter: no onnxscript needed, and it traces these models exactly
    # (the check below); torch >= 2.9 warns that the dynamo exporter is now the default.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(part.module, args, str(path), input_names=part.input_names, output_names=[part.output],
                          dynamic_axes=part.dynamic, opset_version=opset, dynamo=False)


def check_part(part, path: Path) -> float:
    """Max abs difference between onnxruntime and PyTorch on the part's check inputs."""
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        want = (part.reference or part.module)(*part.check_inputs.values()).float().numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run([part.output], {k: v.numpy() for k, v in part.check_inputs.items()})
    if got.shape != want.shape:
        raise ExportError(f"{path.name}: onnxruntime gave shape {got.shape}, PyTorch {want.shape}")
    return float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())


def export_parts(parts, files: dict[str, Path], opset: int):
    """Trace and check every part into temporary files: yields Progress, returns
    ({suffix: temporary file}, checks). Removes what it wrote when anything fails."""
    tmps = {s: p.with_name(f".tmp-{os.getpid()}-{p.name}") for s, p in files.items()}
    checks = []
    try:
        for i, part in enumerate(parts):
            name = files[part.suffix].name
            yield Progress(i / len(parts), f"exporting {name}")
            try:
                _trace(part, tmps[part.suffix], opset)
            except PatchworkError:
                raise
            except Exception as exc:  # noqa: BLE001 - the exporter's own errors, as one line
                raise ExportError(f"{name}: the ONNX exporter failed ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from None
            yield Progress((i + 0.5) / len(parts), f"checking {name} with onnxruntime")
            diff = check_part(part, tmps[part.suffix])
            if not diff <= TOLERANCE:
                raise ExportError(f"{name}: onnxruntime differs from PyTorch by {diff:.2e} (allowed {TOLERANCE:g}); "
                                  "nothing was written")
            n = next(iter(part.check_inputs.values())).shape[0]
            checks.append(PartCheck(name, part.output, diff, int(n)))
    except BaseException:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)
        raise
    return tmps, checks


def sidecar(card: dict, entry, run: Path, files: dict[str, Path], checks, opset: int, extra: dict) -> dict:
    """The JSON beside the graphs: what a program needs to use them without Patchwork."""
    import onnxruntime
    import torch

    from engine.catalogue.domain import domain_of

    domain = domain_of(entry)
    weights = run / card.get("weights", "model.safetensors")
    return {
        "format": "patchwork-onnx/1",
        "model": entry.name, "family": entry.family, "run": run.name, "recipe": card.get("recipe"),
        "files": {s or "model": p.name for s, p in files.items()} | extra.get("files", {}),
        "inputs": extra["inputs"], "outputs": extra["outputs"],
        "labels": extra.get("labels"),
        "preprocess": asdict(entry.preprocess) | {"layout": "NCHW", "pixels": "RGB (L when grayscale) / 255, "
                                                  "short side resized, centre-cropped, then (x - mean) / std"},
        "domain": {"kind": domain.kind, "text": domain.text, "classes": list(domain.classes)} if domain else
        {"dataset": card.get("dataset")},
        "weights_sha256": sha256_of(weights),
        "onnx_sha256": {p.name: sha256_of(p) for p in files.values()},
        "opset": opset,
        "check": {"tolerance": TOLERANCE, "passed": True, "onnxruntime": onnxruntime.__version__,
                  "torch": torch.__version__, "parts": [asdict(c) for c in checks]},
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(shlex.quote(a) for a in ["python", "main.py", "export", run.name, "--onnx", extra["dest"]]
                            + (["--opset", str(opset)] if opset != DEFAULT_OPSET else [])),
    }


def write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        tmp.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
