"""Headless collection views: `map FOLDER [--out map.png] [--method pca|tsne|umap] [--json]` and
`duplicates FOLDER [--threshold T] [--json]` (prints groups; never deletes anything)."""
from __future__ import annotations

import argparse
import json
import sys

from engine.collection.duplicates import DEFAULT_THRESHOLD
from engine.collection.map import METHODS
from engine.search.embedders import DEFAULT_SEARCH_MODEL


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    m = sub.add_parser("map", parents=[common], help="lay an indexed photo folder out in 2-D, with named clusters")
    m.add_argument("folder")
    m.add_argument("--out", default=None, metavar="PNG", help="draw the map into this image")
    m.add_argument("--method", choices=METHODS, default="pca",
                   help="pca (always), tsne (scikit-learn) or umap (umap-learn, the `map` extra)")
    m.add_argument("--clusters", type=int, default=None, metavar="K",
                   help="k-means clusters (default: sqrt(N/2), at most 16)")
    _shared(m)
    m.add_argument("--json", action="store_true", help="one JSON document: each photo's x, y and cluster")
    d = sub.add_parser("duplicates", parents=[common], help="find near-duplicate photos (never deletes anything)")
    d.add_argument("folder")
    d.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, metavar="T",
                   help=f"similarity a pair needs, 0-1 (default {DEFAULT_THRESHOLD}; higher: stricter)")
    _shared(d)
    d.add_argument("--json", action="store_true", help="one JSON document: the groups, keeper first")


def _shared(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_SEARCH_MODEL, metavar="ID", help="embedding model of the index")
    p.add_argument("--no-index", action="store_true", help="do not refresh the index first")


def _usage_problem(args) -> str | None:
    if args.command == "duplicates" and not 0.0 < args.threshold <= 1.0:
        return f"--threshold must be in (0, 1] (got {args.threshold})"
    if args.command == "map" and args.clusters is not None and args.clusters < 1:
        return "--clusters must be at least 1"
    return None


def run(args) -> int:
    from engine.cli_support import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, exit_code, out_file_problem, say_error
    from engine.core import Engine
    from engine.errors import JobFailed
    from engine.jobs import Priority

    problem = _usage_problem(args)
    if problem:
        say_error(problem)
        return EXIT_USAGE
    if args.command == "map" and args.out:
        problem = out_file_problem(args.out)
        if problem:
            say_error(problem)
            return EXIT_BAD_INPUT
    engine = Engine(device=args.device).start()
    try:
        engine.wait_ready()
        if not args.no_index:
            engine.submit("index_folder", {"folder": args.folder, "model_id": args.model},
                          priority=Priority.BACKGROUND).result()
        if args.command == "map":
            res = engine.submit("collection_map", {"folder": args.folder, "model_id": args.model,
                                                   "method": args.method, "clusters": args.clusters}).result()
            return _print_map(res, args)
        res = engine.submit("collection_duplicates", {"folder": args.folder, "model_id": args.model,
                                                      "threshold": args.threshold}).result()
        _print_duplicates(res, args.json)
        return EXIT_OK
    except JobFailed as exc:
        say_error(exc.info.message)
        return exit_code(exc.info)
    finally:
        engine.shutdown()


def _print_map(res, args) -> int:
    from engine.cli_support import EXIT_BAD_INPUT, EXIT_OK, save_image, say_error
    from engine.paths import printable_path

    if args.out:
        from engine.collection.render import render_map

        problem = save_image(render_map(res.paths, res.xy, res.cluster, res.labels), args.out)
        if problem:
            say_error(problem)
            return EXIT_BAD_INPUT
    sizes = [int((res.cluster == c).sum()) for c in range(len(res.labels))]
    if args.json:
        print(json.dumps({
            "folder": res.root, "model": res.model_id, "method": res.method, "reused": res.reused,
            "clusters": [{"id": c, "label": label, "size": n} for c, (label, n) in enumerate(zip(res.labels, sizes))],
            "photos": [{"path": p, "x": round(float(x), 5), "y": round(float(y), 5), "cluster": int(c)}
                       for p, (x, y), c in zip(res.paths, res.xy, res.cluster)]}))
        return EXIT_OK
    print(f"{printable_path(res.root)}: {len(res.paths):,} photos laid out by {res.method} in {res.seconds:.1f} s"
          + (f" ({res.reused:,} places reused)" if res.reused else ""))
    for c, (label, n) in enumerate(zip(res.labels, sizes)):
        print(f"  cluster {c:2d}  {n:6,d} photos  {label}")
    if args.out:
        print(f"map: {printable_path(args.out)}")
    return EXIT_OK


def _print_duplicates(res, as_json: bool) -> None:
    from engine.paths import printable_path

    if as_json:
        print(json.dumps({"folder": res.root, "model": res.model_id, "threshold": res.threshold,
                          "photos": res.photos, "unreadable": list(res.unreadable),
                          "groups": [{"keeper": g.keeper, "photos": [
                              {"path": p.path, "width": p.width, "height": p.height, "bytes": p.bytes,
                               "mtime": round(p.mtime, 3), "similarity": p.similarity} for p in g.photos]}
                              for g in res.groups]}))
        return
    for n, g in enumerate(res.groups, 1):
        print(f"group {n}: {len(g.photos)} photos")
        for p in g.photos:
            mark = "keep" if p.path == g.keeper else f"{p.similarity:.2f}"
            print(f"  {mark:>4}  {p.width}x{p.height}  {p.bytes / 1024:8.0f} KB  {printable_path(p.path)}")
    spare = sum(p.bytes for g in res.groups for p in g.others)
    print(f"{len(res.groups)} groups among {res.photos:,} photos at threshold {res.threshold:.2f}; "
          f"{sum(len(g.others) for g in res.groups)} photos beside their keepers ({spare / 2**20:.1f} MB). "
          "Nothing was deleted.")
    for path in res.unreadable:
        print(f"note: {printable_path(path)}: could not be decoded for hashing", file=sys.stderr)
