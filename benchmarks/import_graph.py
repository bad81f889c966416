"""The shape of the engine's import graph, counting imports inside functions too.

    python benchmarks/import_graph.py            # the numbers
    python benchmarks/import_graph.py --edges    # ... and every package-level edge

A lazy import (inside a function) ties two rooms together as much as one at the top of a
file: it only hides the tie from a first look. So every `import` / `from ... import` in a
file counts, wherever it stands. Printed:

- module cycles: strongly connected components of more than one module (engine.x.y files);
- package graph: the packages and top modules directly under engine/ ("units"), an edge
  when any file of one imports any file of another; its strongly connected components
  (a DAG has none bigger than one unit) and the pairs of units that reach each other;
- upward imports: imports from a unit into a unit of a higher layer, or sideways into an
  independent sibling ("|"), by the layers contract in pyproject.toml (what import-linter
  enforces; the same list is read here, so the two never disagree);
- the longest functions in engine/ and gui/ (lines, decorators and docstring included).
"""
from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

def engine_layers(root: Path) -> list[str]:
    """The layers contract of pyproject.toml (highest first; "|" or ":" between siblings)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    for contract in config["tool"]["importlinter"]["contracts"]:
        if contract.get("type") == "layers" and contract.get("containers") == ["engine"]:
            return contract["layers"]
    return []


def layer_of(layers: list[str]) -> dict[str, int]:
    """unit -> layer rank (0 = lowest)."""
    ranks = {}
    for rank, layer in enumerate(reversed(layers)):
        for unit in layer.replace(":", "|").split("|"):
            ranks[unit.strip()] = rank
    return ranks


def independent(layers: list[str]) -> set[str]:
    """Units that share a layer with siblings they must not import ("|")."""
    return {u.strip() for layer in layers if "|" in layer for u in layer.split("|")}


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, name: str, is_package: bool) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function?) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[:len(base) - (child.level - 1)]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                # `from engine.x import y` may name the module engine.x.y
                found.append((mod, child.lineno, in_function))
                found.extend((f"{mod}.{a.name}", child.lineno, in_function) for a in child.names)
            visit(child, inner)

    visit(tree, False)
    return found


def tarjan(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (iterative Tarjan)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    out.append(sorted(comp))
    return out


def engine_graph(root: Path):
    files = {module_name(p, root): p for p in sorted((root / "engine").rglob("*.py"))}
    modules = set(files)
    edges: dict[str, dict[str, list[tuple[int, bool]]]] = defaultdict(lambda: defaultdict(list))
    for name, path in files.items():
        for target, line, lazy in imports_of(path, name, path.name == "__init__.py"):
            if target in modules and target != name and target != "engine":
                edges[name][target].append((line, lazy))
    return files, edges


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def longest_functions(root: Path, top: int = 5) -> list[tuple[int, str]]:
    found = []
    for folder in ("engine", "gui"):
        for path in (root / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                    found.append((node.end_lineno - start + 1, f"{path.relative_to(root)}:{node.name}"))
    return sorted(found, reverse=True)[:top]


def report(root: Path, show_edges: bool = False, layers: list[str] | None = None) -> dict:
    files, edges = engine_graph(root)
    mod_graph = {m: set(edges.get(m, {})) for m in files}
    mod_cycles = [c for c in tarjan(mod_graph) if len(c) > 1]

    unit_edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for src, targets in edges.items():
        for dst, sites in targets.items():
            a, b = unit(src), unit(dst)
            if a != b and a != "engine" and b != "engine":
                for line, lazy in sites:
                    unit_edges[(a, b)].append(f"{src}:{line}{' (lazy)' if lazy else ''} -> {dst}")
    units = sorted({unit(m) for m in files} - {"engine"})
    unit_graph = {u: {b for (a, b) in unit_edges if a == u} for u in units}
    sccs = [c for c in tarjan(unit_graph) if len(c) > 1]
    mutual = sorted((a, b) for (a, b) in unit_edges if a < b and (b, a) in unit_edges)

    layers = layers or engine_layers(REPO)
    ranks, apart = layer_of(layers), independent(layers)
    unknown = [u for u in units if u not in ranks]
    upward = [(a, b, site) for (a, b), sites in sorted(unit_edges.items())
              if a in ranks and b in ranks and ranks[b] > ranks[a] for site in sites]
    sideways = [(a, b, site) for (a, b), sites in sorted(unit_edges.items())
                if a in apart and b in apart and ranks.get(b) == ranks.get(a) for site in sites]

    print(f"engine: {len(files)} modules, {len(units)} units (packages and top modules)")
    print(f"module cycles (SCCs > 1 module, lazy imports counted): {len(mod_cycles)}")
    for c in mod_cycles:
        print("   ", " <-> ".join(c))
    print(f"package-level SCCs > 1 unit: {len(sccs)}; largest: {max((len(c) for c in sccs), default=1)} units")
    for c in sccs:
        print("   ", ", ".join(c))
    print(f"unit pairs importing each other: {len(mutual)}")
    for a, b in mutual:
        print(f"    {a} <-> {b}")
    print(f"upward imports (into a higher layer): {len(upward)}; sideways (into an independent sibling): "
          f"{len(sideways)}")
    for a, b, site in upward + sideways:
        print(f"    {a} -> {b}: {site}")
    if unknown:
        print(f"units in no layer: {', '.join(unknown)}")
    longest = longest_functions(root)
    print("longest functions:", "; ".join(f"{n} lines {name}" for n, name in longest))
    if show_edges:
        for (a, b), sites in sorted(unit_edges.items()):
            print(f"{a} -> {b} ({len(sites)})")
    return {"module_cycles": len(mod_cycles), "sccs": len(sccs),
            "largest_scc": max((len(c) for c in sccs), default=1), "upward": len(upward), "sideways": len(sideways),
            "longest": longest[0][0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", action="store_true")
    ap.add_argument("--root", type=Path, default=REPO)
    args = ap.parse_args()
    report(args.root, args.edges, engine_layers(REPO))  # an older tree is measured against today's layers
    return 0


if __name__ == "__main__":
    sys.exit(main())
