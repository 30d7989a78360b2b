"""Print the package's import graph in figures: files, import edges between them, and import circles.

    python scripts/import_graph.py            # summary
    python scripts/import_graph.py --edges    # every edge, importer -> imported

Edges that break the declared layering are what ``lint-imports`` (contracts in pyproject.toml) reports.
Reads the source with grimp (installed with import-linter); nothing is imported or run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grimp


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of size > 1 (the import circles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", action="store_true", help="print every edge")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    g = grimp.build_graph("deepresolve", cache_dir=None)
    modules = sorted(m for m in g.modules if m != "deepresolve")
    edges = {m: {i for i in g.find_modules_directly_imported_by(m) if i.startswith("deepresolve.")} for m in modules}
    n_edges = sum(len(v) for v in edges.values())
    circles = strongly_connected(edges)
    print(f"modules: {len(modules)}\nimport edges between them: {n_edges}\ncircles: {len(circles)}")
    for c in circles:
        print("  circle:", " <-> ".join(c))
    if args.edges:
        for m in modules:
            for i in sorted(edges[m]):
                print(f"{m} -> {i}")


if __name__ == "__main__":
    main()
