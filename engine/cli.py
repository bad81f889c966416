"""Headless command line: `python main.py classify IMAGE... [--top K] [--json]`, `models`.

Runs the same jobs as the GUI, through the same engine thread. Each other subcommand lives
with its feature (engine/<feature>/cli.py: an add_parser(sub, common) and a run(args)); what
they share (exit codes, error lines, output files) is engine/cli_support.py, below them.
"""
from __future__ import annotations

import argparse
import json
import sys

from engine import lazy
from engine.cli_support import (EXIT_BAD_INPUT, EXIT_ENGINE, EXIT_OK, EXIT_STOPPED, EXIT_USAGE, exit_code, say_error,
                                warn_domain)
from engine.device import CHOICES

# command -> the feature function that declares it; each feature's CLI module imports its own
# modules, so a command builds only its own parser (`search` need not import map's).
FEATURE_PARSERS = {
    "index": "engine.search.cli:add_parsers", "search": "engine.search.cli:add_parsers",
    "map": "engine.collection.cli:add_parsers", "duplicates": "engine.collection.cli:add_parsers",
    "attention": "engine.attention.cli:add_parser", "train": "engine.train.cli:add_parser",
    "generate": "engine.generate.cli:add_parser", "mae": "engine.mae.cli:add_parser",
    "match": "engine.match.cli:add_parser", "export": "engine.export.cli:add_parser",
}
BUILT_IN = ("gui", "classify", "models")


def _command(argv: list[str] | None) -> str | None:
    """The command `argv` names, when the parser may be built for it alone; None for the full
    parser (no argv, --help before the command, or a name argparse should list the choices for)."""
    rest = list(argv or [])
    while rest and rest[0].startswith("-"):
        if rest[0] in ("-h", "--help"):
            return None
        rest = rest[2:] if rest[0] == "--device" else rest[1:]
    if rest and (rest[0] in FEATURE_PARSERS or rest[0] in BUILT_IN):
        return rest[0]
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line; given the `argv` it will parse, only that command's feature parser is built."""
    device_help = f"compute device: {', '.join(CHOICES)} or cuda:N (default: saved setting, else auto = CUDA > MPS > CPU)"
    parser = argparse.ArgumentParser(
        prog="patchwork", description="Patchwork: a workbench for looking inside vision models. "
                                      "With no command, the desktop app opens.")
    parser.add_argument("--device", default=None, help=device_help)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default=argparse.SUPPRESS, help=device_help)

    sub.add_parser("gui", parents=[common], help="open the desktop app (the default)")

    c = sub.add_parser("classify", parents=[common], help="print the top-k ImageNet classes of images")
    c.add_argument("images", nargs="+", metavar="IMAGE")
    c.add_argument("--top", type=int, default=5, metavar="K", help="how many classes to print (default 5)")
    c.add_argument("--model", default=None, metavar="ID", help="catalogue id (see `models`)")
    c.add_argument("--json", action="store_true", help="one JSON object per image on stdout")

    only = _command(argv)
    for target in dict.fromkeys(FEATURE_PARSERS.values()):  # in this order in --help
        if only is None or FEATURE_PARSERS.get(only) == target:
            lazy.attribute(target)(sub, common)

    m = sub.add_parser("models", parents=[common], help="list the model catalogue")
    m.add_argument("--json", action="store_true")
    return parser


def run(args: argparse.Namespace) -> int:
    """The command's exit code from the table above; Ctrl-C and unforeseen errors included,
    so no traceback ever reaches the terminal."""
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_STOPPED
    except Exception as exc:  # noqa: BLE001 - the last guard: one line, never a traceback
        from engine.errors import PatchworkError, reason

        say_error(reason(exc) if isinstance(exc, PatchworkError) else f"{type(exc).__name__}: {reason(exc)}")
        return EXIT_BAD_INPUT if isinstance(exc, PatchworkError) else EXIT_ENGINE


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "classify":
        return _classify(args)
    if args.command == "models":
        return _models(args)
    if args.command == "attention":
        from engine.attention.cli import run as run_attention

        return run_attention(args)
    if args.command in ("index", "search"):
        from engine.search.cli import run as run_search

        return run_search(args)
    if args.command in ("map", "duplicates"):
        from engine.collection.cli import run as run_collection

        return run_collection(args)
    if args.command == "train":
        return _train(args)
    if args.command == "generate":
        from engine.generate.cli import run as run_generate

        return run_generate(args)
    if args.command == "mae":
        from engine.mae.cli import run as run_mae

        return run_mae(args)
    if args.command == "match":
        from engine.match.cli import run as run_match

        return run_match(args)
    if args.command == "export":
        from engine.export.cli import run as run_export

        return run_export(args)
    raise SystemExit(f"unknown command {args.command}")  # argparse already rejects these


def _train(args) -> int:
    """`train RECIPE --dataset ... [--set k=v] [--resume RUN]`: see engine/train/cli.py."""
    from engine.train.cli import run as run_train

    return run_train(args)


def _classify(args) -> int:
    from engine import catalogue
    from engine.core import Engine
    from engine.errors import JobFailed

    if args.top < 1:
        print("error: --top must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    model_id = args.model or catalogue.DEFAULT_CLASSIFIER
    engine = Engine(device=args.device).start()
    try:
        engine.wait_ready()
        status = 0
        for path in args.images:
            handle = engine.submit("classify", {"path": path, "model_id": model_id, "top_k": args.top,
                                                "preview": False})
            try:
                res = handle.result()
            except JobFailed as exc:
                say_error(exc.info.message)
                if exit_code(exc.info) != EXIT_BAD_INPUT or exc.info.type == "ModelError":
                    return exit_code(exc.info)  # the same for every image: stop here
                status = EXIT_BAD_INPUT
                continue
            warn_domain(res)
            if args.json:
                print(json.dumps({"path": res.path, "model": res.model_id,
                                  "top": [{"label": p.label, "prob": round(p.prob, 6), "index": p.index}
                                          for p in res.top]}), flush=True)
            else:
                print(res.path)
                for p in res.top:
                    print(f"  {100 * p.prob:6.2f}%  {p.label}")
        return status
    finally:
        engine.shutdown()


def _models(args) -> int:
    from dataclasses import asdict

    from engine import catalogue
    from engine.catalogue.locate import state_of

    for e in catalogue.entries():
        st = state_of(e)
        if args.json:
            row = asdict(e)
            row.update(state=st.state, state_detail=st.detail, path=st.path)
            print(json.dumps(row))
        else:
            print(f"{e.id:22s} {e.family:14s} {st.state:15s} {e.size_mb:8.1f} MB  {e.name}")
    return EXIT_OK
