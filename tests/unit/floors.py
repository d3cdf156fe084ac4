"""The import graph of the service's packages, read with `ast` (nothing is imported)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Bottom to top: a module may import its own floor or any floor below it.
FLOORS = ("adapters", "domain", "agents", "pipelines", "entrypoints")


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, dotted
    target: str  # imported module, dotted
    path: Path
    line: int
    lazy: bool  # inside a function (still an import: it counts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "devgateway":
        parts = parts[2:]  # devgateway/src/devgateway/...
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_files() -> Iterator[Path]:
    for floor in FLOORS:
        yield from sorted((ROOT / floor).rglob("*.py"))
    yield from sorted((ROOT / "devgateway" / "src").rglob("*.py"))


def _resolve(source: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = source.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def edges(path: Path) -> Iterator[Edge]:
    source = module_name(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    lazy_lines = {id(n) for f in functions for n in ast.walk(f)}
    for node in ast.walk(tree):
        lazy = id(node) in lazy_lines
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Edge(source, alias.name, path, node.lineno, lazy)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(source, path.name == "__init__.py", node)
            for alias in node.names:
                # `from pkg import module` imports pkg.module when it is one.
                yield Edge(source, f"{target}.{alias.name}", path, node.lineno, lazy)


def floor_of(module: str) -> str | None:
    top = module.split(".")[0]
    if top in FLOORS or top == "devgateway":
        return top
    return None


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for p in package_files()}


def known(module: str, modules: dict[str, Path]) -> str | None:
    """The project module an import names (`a.b.c` may be the name `c` in module `a.b`)."""
    while module:
        if module in modules:
            return module
        module = module.rpartition(".")[0]
    return None


def graph() -> tuple[dict[str, set[str]], list[Edge]]:
    modules = project_modules()
    out: dict[str, set[str]] = {m: set() for m in modules}
    all_edges: list[Edge] = []
    for path in package_files():
        for edge in edges(path):
            target = known(edge.target, modules)
            if target is None or target == edge.source:
                continue
            # A package's __init__ importing its own modules is not a dependency back on itself.
            out[edge.source].add(target)
            all_edges.append(Edge(edge.source, target, edge.path, edge.line, edge.lazy))
    return out, all_edges


def upward(all_edges: list[Edge]) -> list[Edge]:
    """Imports that point up a floor, or between the service and the dev gateway."""
    bad = []
    for e in all_edges:
        src, dst = floor_of(e.source), floor_of(e.target)
        if src is None or dst is None:
            continue
        if (src == "devgateway") != (dst == "devgateway") or (
            src != "devgateway" and FLOORS.index(dst) > FLOORS.index(src)
        ):
            bad.append(e)
    return bad


def cycles(out: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in out[v]:
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
                found.append(sorted(component))

    for v in sorted(out):
        if v not in index:
            visit(v)
    return found
