"""Headless photo search: `index FOLDER` and `search "QUERY" --folder FOLDER`."""
from __future__ import annotations

import argparse
import json
import sys

from engine.search.embedders import DEFAULT_SEARCH_MODEL
from engine.search.relevance import DEFAULT_CUTOFF


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    i = sub.add_parser("index", parents=[common], help="index a photo folder for search (incremental)")
    i.add_argument("folder")
    i.add_argument("--model", default=DEFAULT_SEARCH_MODEL, metavar="ID",
                   help=f"embedding model (default {DEFAULT_SEARCH_MODEL}, offline)")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    s = sub.add_parser("search", parents=[common], help="search an indexed folder by text, image or a +/- mix")
    s.add_argument("query", help='e.g. "a cat", ./photo.jpg, or "2:golden retriever + ./pool.jpg - fruit"')
    s.add_argument("--folder", required=True)
    s.add_argument("--top", type=int, default=10, metavar="K")
    s.add_argument("--min-score", type=float, default=None, metavar="R",
                   help=f"drop results below this relevance, 0-1 (default {DEFAULT_CUTOFF}, the good-match cut-off; "
                        "0 lists the closest photos even when none matches)")
    s.add_argument("--model", default=DEFAULT_SEARCH_MODEL, metavar="ID")
    s.add_argument("--no-index", action="store_true", help="do not refresh the index before searching")
    s.add_argument("--json", action="store_true", help='one {"path": ..., "score": ...} object per line')


def _index(engine, args, quiet: bool):
    from engine.jobs import Priority

    def progress(ev):
        if not quiet and getattr(ev, "kind", None) == "progress" and ev.payload.message:
            print(f"\r{ev.payload.message:60s}", end="", file=sys.stderr, flush=True)

    engine.add_listener(progress)
    try:
        return engine.submit("index_folder", {"folder": args.folder, "model_id": args.model},
                             priority=Priority.BACKGROUND).result()
    finally:
        engine.remove_listener(progress)
        if not quiet:
            print(file=sys.stderr)


def _print_no_match(out, as_json: bool) -> None:
    """No photo clears the cut-off: one line that says so (a JSON object with "no_match": true)."""
    from engine.paths import printable_path

    best = out.best
    if as_json:
        print(json.dumps({"no_match": True, "query": out.query, "cutoff": out.cutoff,
                          "best": None if best is None else {"path": best.path, "score": round(best.score, 6)}}))
    else:
        closest = f"; the closest is {printable_path(best.path)} at {best.score:.3f}" if best else ""
        print(f"no good match for {out.query!r}: no photo reaches relevance {out.cutoff:.2f}{closest}")


def _print_hits(out, args) -> int:
    from engine.cli_support import EXIT_OK
    from engine.paths import printable_path

    for hit in out.hits:
        print(json.dumps({"path": hit.path, "score": round(hit.score, 6), "similarity": round(hit.similarity, 6)})
              if args.json else f"{hit.score:.3f}  {printable_path(hit.path)}")
    if out.no_match:
        _print_no_match(out, args.json)
    return EXIT_OK


def _quick(args) -> int:
    """A text-only query on a label-space model, in this process and without torch (engine/search/quick.py)."""
    from engine.cli_support import EXIT_BAD_INPUT, say_error
    from engine.errors import PatchworkError
    from engine.search.quick import quick_search

    min_score = DEFAULT_CUTOFF if args.min_score is None else args.min_score
    try:
        out = quick_search(args.query, args.folder, args.model, args.top, min_score)
    except PatchworkError as exc:
        say_error(str(exc))
        return EXIT_BAD_INPUT
    return _print_hits(out, args)


def run(args) -> int:
    from engine.cli_support import EXIT_OK, EXIT_USAGE, exit_code, say_error
    from engine.core import Engine
    from engine.errors import JobFailed
    from engine.paths import printable_path

    if args.command == "search" and args.top < 1:
        say_error(f"--top must be at least 1 (got {args.top})")
        return EXIT_USAGE
    if args.command == "search" and not args.query.strip():
        say_error("the QUERY is empty: give words, an image path, or a mix such as \"cat + ./pool.jpg\"")
        return EXIT_USAGE
    if args.command == "search" and args.no_index:
        from engine.search.quick import can_answer

        if can_answer(args.query, args.folder, args.model):
            return _quick(args)
    engine = Engine(device=args.device).start()
    try:
        engine.wait_ready()
        if args.command == "index" or not args.no_index:
            res = _index(engine, args, quiet=args.command == "search")
            for notice in res.notices:
                print(f"note: {printable_path(notice)}", file=sys.stderr)
            for path, reason in res.bad:
                print(f"skipped: {printable_path(path)}: {reason}", file=sys.stderr)
            if args.command == "index":
                summary = {"folder": res.root, "model": res.model_id, "images": res.total, "embedded": res.embedded,
                           "reused": res.reused, "unchanged": res.unchanged, "removed": res.removed,
                           "bad": len(res.bad), "seconds": round(res.seconds, 3)}
                print(json.dumps(summary) if args.json else
                      f"indexed {printable_path(res.root)}: {res.total} images ({res.embedded} embedded, {res.reused} reused, "
                      f"{res.unchanged} unchanged, {res.removed} removed, {len(res.bad)} skipped) "
                      f"in {res.seconds:.1f} s")
                return EXIT_OK
        min_score = DEFAULT_CUTOFF if args.min_score is None else args.min_score
        out = engine.submit("search", {"query": args.query, "folder": args.folder, "model_id": args.model,
                                       "top_k": args.top, "min_score": min_score}).result()
        return _print_hits(out, args)
    except JobFailed as exc:
        say_error(exc.info.message)
        return exit_code(exc.info)
    finally:
        engine.shutdown()
