"""`python main.py export RUN --onnx FILE [--opset N] [--json]`: a run trained here as ONNX,
checked with onnxruntime against PyTorch, with a JSON sidecar beside it."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from engine.cli_support import EXIT_OK, run_one


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    from engine.export.onnx_file import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, TOLERANCE

    e = sub.add_parser("export", parents=[common], help="export a trained run to ONNX (checked with onnxruntime)",
                       description="Export a run trained here (a classifier, the image and text towers of a "
                                   "CLIP/LiT, an MAE encoder or a self-supervised backbone) to ONNX. Each graph is "
                                   f"run with onnxruntime and compared with PyTorch (max abs difference <= {TOLERANCE:g}); "
                                   "a JSON sidecar beside it holds labels, preprocessing, domain and SHA-256s.")
    e.add_argument("run", metavar="RUN", help="a run name (see the Train panel or the runs folder) or a run folder")
    e.add_argument("--onnx", required=True, metavar="FILE.onnx", help="where to write the graph")
    e.add_argument("--opset", type=int, default=DEFAULT_OPSET, metavar="N",
                   help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET})")
    e.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args) -> int:
    res, status = run_one(args.device, "export_run", {"run": args.run, "dest": args.onnx, "opset": args.opset})
    if res is None:
        return status
    if args.json:
        print(json.dumps(asdict(res) | {"max_abs_diff": res.max_abs_diff}), flush=True)
        return EXIT_OK
    for check in res.checks:
        print(f"{check.file}: {check.output}, onnxruntime vs PyTorch max abs difference {check.max_abs_diff:.1e} "
              f"(allowed {res.tolerance:g}) on {check.samples} inputs")
    print(f"wrote {', '.join(res.files)}")
    print(f"sidecar {res.sidecar}")
    return EXIT_OK
