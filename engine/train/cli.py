"""Headless training: `python main.py train RECIPE --dataset fashion-mnist [--set k=v ...]`.

Runs the same "train" job as the GUI's Train panel, through the engine thread. Prints one
line per log interval (JSON lines with --json) and the final metrics. Ctrl-C stops the
run cleanly: the job saves a checkpoint with status "stopped" before the command exits.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from engine.cli_support import EXIT_BAD_INPUT, EXIT_OK, EXIT_STOPPED, EXIT_USAGE, exit_code, say_error


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    t = sub.add_parser("train", parents=[common], help="train a model with a recipe (see engine/train/recipes)",
                       description="Train a model. Settings come from the recipe's defaults, then --config, "
                                   "then each --set. The run folder holds checkpoints, metrics and card.json.")
    from engine.train.recipes import RECIPES

    t.add_argument("recipe", help=f"one of: {', '.join(RECIPES)}")
    t.add_argument("--dataset", default="fashion-mnist",
                   help="fashion-mnist (the default), or a folder: class folders (supervised, probes), "
                        "any images (moco_v2, moco_v3, simclr, instdisc, mae), images with .txt captions or a CSV "
                        "(clip, lit)")
    t.add_argument("--config", metavar="FILE.json", help="a JSON object of settings")
    t.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="one setting (VALUE parsed as JSON when it can be: 3, 1e-3, true, \"text\"); repeatable")
    t.add_argument("--resume", metavar="RUN", help="continue a stopped or killed run (name or folder)")
    t.add_argument("--run-name", metavar="NAME", help="name of the run folder under the runs directory")
    t.add_argument("--run-dir", metavar="DIR", help="the run folder itself (instead of runs directory/NAME)")
    t.add_argument("--download", action="store_true", help="download the dataset if it is not on this machine")
    t.add_argument("--json", action="store_true", help="JSON lines: one per log interval, then the result")


def parse_settings(config_file: str | None, settings: list[str]) -> dict:
    config: dict = {}
    if config_file:
        try:
            loaded = json.loads(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"--config {config_file}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"--config {config_file}: expected a JSON object")
        config.update(loaded)
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        config[key.strip()] = value
    return config


def _line(record: dict) -> str:
    if record.get("kind") == "eval":
        extra = ""
        if "loss" in record:
            extra = f"  loss {record['loss']:.4f}"
        if "accuracy" not in record:  # e.g. MAE pretraining: its own scalar metrics
            shown = "  ".join(f"{k} {v:.5f}" for k, v in record.items()
                              if isinstance(v, float) and k not in ("epoch",))
            return f"eval  step {record['step']:>7}  epoch {record['epoch']:6.2f}  {shown}"
        return f"eval  step {record['step']:>7}  epoch {record['epoch']:6.2f}  accuracy {100 * record.get('accuracy', 0):6.2f}%{extra}"
    eta = record.get("eta_s", 0.0)
    return (f"step {record['step']:>7}/{record.get('total_steps', '?')}  epoch {record['epoch']:6.2f}  "
            f"loss {record['loss']:.4f}  lr {record['lr']:.2e}  {record['samples_per_s']:8.0f} samples/s  "
            f"eta {int(eta // 60):d}:{int(eta % 60):02d}")


def _plain(value):
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def run(args) -> int:
    from engine.core import Engine
    from engine.errors import JobCancelled, JobFailed
    from engine.jobs import JobEvent, Priority

    try:
        config = parse_settings(args.config, args.settings)
    except ValueError as exc:
        say_error(str(exc))
        return EXIT_BAD_INPUT if str(exc).startswith("--config") else EXIT_USAGE  # a file given vs the syntax
    printed = {"train": -1, "eval": -1}
    lock = threading.Lock()

    from engine.train import distributed

    quiet = distributed.rank() != 0  # under torchrun, rank 0 speaks for the run

    def listener(event) -> None:
        if quiet or not isinstance(event, JobEvent) or event.kind != "partial" or not isinstance(event.payload, dict):
            return
        record = event.payload
        kind = record.get("kind")
        if kind not in printed:
            return
        with lock:
            if record["step"] <= printed[kind]:
                return
            printed[kind] = record["step"]
            if args.json:
                print(json.dumps(_plain({k: v for k, v in record.items() if k not in ("confusion_matrix", "preview")})),
                      flush=True)
            else:
                print(_line(record), flush=True)

    engine = Engine(device=args.device).start()
    engine.add_listener(listener)
    try:
        engine.wait_ready()
        handle = engine.submit("train", {"recipe": args.recipe, "dataset": args.dataset, "config": config,
                                         "resume": args.resume, "run_name": args.run_name,
                                         "run_dir": args.run_dir, "download": args.download},
                               name=f"train {args.recipe}", priority=Priority.BACKGROUND)
        try:
            while not handle.wait(0.25):
                pass
        except KeyboardInterrupt:
            print("stopping: saving a checkpoint…", file=sys.stderr, flush=True)
            handle.cancel()
            handle.wait()
        try:
            result = handle.result()
        except JobCancelled:
            print("stopped; continue with: python main.py train "
                  f"{args.recipe} --resume {_stopped_run(args) or 'RUN'}", file=sys.stderr)
            return EXIT_STOPPED
        except JobFailed as exc:
            say_error(exc.info.message)
            return exit_code(exc.info)
        if not quiet:
            _print_result(result, args.json)
        return EXIT_OK
    finally:
        engine.shutdown()


def _stopped_run(args) -> str | None:
    if args.resume:
        return args.resume
    if args.run_dir:
        return args.run_dir
    if args.run_name:
        return args.run_name
    from engine.paths import runs_dir

    cards = sorted(runs_dir().glob("*/card.json"), key=lambda p: p.stat().st_mtime)
    return cards[-1].parent.name if cards else None


def _print_result(result: dict, as_json: bool) -> None:
    metrics = result.get("metrics", {})
    if as_json:
        print(json.dumps({"kind": "result", **_plain(result)}), flush=True)
        return
    print(f"finished {result['run']} in {result['elapsed_s'] / 60:.1f} min ({result['step']} steps)")
    print(f"  run folder: {result['run_dir']}")
    for key, value in metrics.items():
        if isinstance(value, float):
            print(f"  {key}: {100 * value:.2f}%" if key == "accuracy" else f"  {key}: {value:.4f}")
    per_class = metrics.get("per_class_accuracy")
    if per_class is not None:
        from engine.runs.checkpoint import read_json

        classes = read_json(result["card"]).get("classes") or [str(i) for i in range(len(per_class))]
        for name, acc in zip(classes, per_class):
            print(f"    {name:16s} {100 * float(acc):6.2f}%")
