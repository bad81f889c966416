"""The "export_run" request: a finished run -> checked ONNX graph(s) + JSON sidecar."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from engine.errors import ExportError
from engine.export.onnx_file import (
    DEFAULT_OPSET,
    MAX_OPSET,
    MIN_OPSET,
    ExportResult,
    dest_problem,
    export_parts,
    file_names,
    sidecar,
    write_json,
)
from engine.jobs import Progress

#: Run states whose weights are whole (a killed run keeps its last checkpoint's).
EXPORTABLE_STATUS = ("finished", "stopped", "interrupted")


def run_entry(run: Path):
    """(card, catalogue entry, weights file) of a run folder, or an ExportError saying why not."""
    from engine.catalogue.dynamic import entry_from_card
    from engine.catalogue.entry import Source
    from engine.runs.listing import effective_status

    card = json.loads((run / "card.json").read_text(encoding="utf-8"))
    status = effective_status(card, run)
    weights = run / card.get("weights", "model.safetensors")
    if status not in EXPORTABLE_STATUS or not weights.is_file():
        raise ExportError(f"run {run.name} is {status}: only a finished, stopped or interrupted run with weights "
                          f"can be exported")
    if "catalogue" not in card:
        raise ExportError(f"run {run.name} has no model to export (its card has no catalogue section)")
    return card, entry_from_card(card, Source("run", str(weights), sha256=card.get("sha256"))), weights


def _io(parts, files) -> dict:
    """The sidecar's inputs/outputs: names, element types and shapes (-1 where dynamic)."""
    def spec(name, tensor, axes):
        shape = [(-1 if i in axes.get(name, {}) else int(d)) for i, d in enumerate(tensor.shape)]
        return {"name": name, "dtype": str(tensor.dtype).replace("torch.", ""), "shape": shape}

    inputs, outputs = {}, {}
    for p in parts:
        key = files[p.suffix].name
        inputs[key] = [spec(n, t, p.dynamic) for n, t in p.trace_inputs.items()]
        outputs[key] = [{"name": p.output, "dtype": "float32"}]
    return {"inputs": inputs, "outputs": outputs}


def export_job(ctx, run: str, dest: str, opset: int = DEFAULT_OPSET):
    """Export `run` (a name under the runs folder, or a run folder) to `dest` (.onnx)."""
    from engine.catalogue.load import build_model
    from engine.export.towers import parts_of
    from engine.resources import labels
    from engine.runs.listing import resolve_run

    t0 = time.perf_counter()
    if not MIN_OPSET <= int(opset) <= MAX_OPSET:
        raise ExportError(f"--opset {opset}: choose {MIN_OPSET} to {MAX_OPSET}")
    problem = dest_problem(dest)
    if problem:
        raise ExportError(problem)
    folder = resolve_run(run)
    card, entry, weights = run_entry(folder)
    yield Progress(None, f"loading {entry.name}")
    model = build_model(entry, weights).float().cpu().eval()
    parts = parts_of(entry.family, model, entry.preprocess)
    dest_path = Path(dest).expanduser().resolve()
    files = file_names(dest_path, [p.suffix for p in parts])
    tmps, checks = yield from export_parts(parts, files, opset)
    extra = _io(parts, files) | {"dest": str(dest_path)}
    if entry.family == "classifier" and entry.labels:
        extra["labels"] = list(labels(entry.labels))
    try:
        if entry.family == "clip":
            extra["files"] = {"tokenizer": _copy_tokenizer(model, dest_path)}
            extra["text"] = {"max_length": int(model.text_tower.max_length)}
        for suffix, tmp in tmps.items():
            os.replace(tmp, files[suffix])
    finally:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)
    meta = sidecar(card, entry, folder, files, checks, int(opset), extra)
    if "text" in extra:
        meta["text"] = extra["text"]
    side = dest_path.with_suffix(".json")
    write_json(side, meta)
    yield Progress(1.0, "checked with onnxruntime")
    return ExportResult(str(side), tuple(str(p) for p in files.values()), entry.family, tuple(checks),
                        meta["check"]["tolerance"], time.perf_counter() - t0)


def _copy_tokenizer(model, dest: Path) -> str:
    """The text tower's tokenizer.json beside the graphs (the `tokenizers` package reads it)."""
    from engine.models.text import minilm_path

    source = Path(minilm_path()) / "tokenizer.json"
    if not source.is_file():
        raise ExportError(f"{source}: the text tower's tokenizer file is missing")
    target = dest.with_name(f"{dest.stem}.tokenizer.json")
    shutil.copyfile(source, target)
    return target.name
