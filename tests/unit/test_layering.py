"""The package layering holds: no import cycle among the product's modules (module-level and
function-level imports alike), veritrain imports no role, no role imports another, and nothing
the product ships holds benchmark, demo or cheating code (those live in bench/, demo/, adversary/)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("veritrain", "worker", "requester", "verifier")
TOOLING = ("bench", "demo", "adversary")

#: KNOWN CYCLE, to be removed (issue 15 phase B, item 5): worker/disputes.py and worker/discovery.py
#: take the whole Worker and call back into worker/loop.py. Nothing else may join this list.
KNOWN_CYCLES: set[frozenset[str]] = {frozenset({"worker.loop", "worker.disputes", "worker.discovery"})}


def _modules(packages: tuple[str, ...]) -> dict[str, Path]:
    found = {}
    for pkg in packages:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(module: str, source: str, is_package: bool = False) -> set[str]:
    """Every name ``module`` imports anywhere in ``source`` (module level or inside functions),
    absolute and dotted: ``from a.b import c`` gives ``a.b`` and ``a.b.c``."""
    names: set[str] = set()
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def _edges(module: str, source: str, modules: set[str], is_package: bool = False) -> set[str]:
    """The modules of ``modules`` that ``module`` imports: ``from pkg import sub`` is an edge to
    ``pkg.sub`` when that is a module, else to ``pkg``."""
    imported = _imports(module, source, is_package)
    edges = set()
    for name in imported:
        if name in modules and name != module:
            via_submodule = any(o.startswith(name + ".") and o in modules for o in imported)
            if not via_submodule or f"import {name}" in source:
                edges.add(name)
    return edges


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {m: _edges(m, p.read_text(), set(modules), p.name == "__init__.py") for m, p in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_sees_function_level_and_relative_imports_and_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset({"a", "b", "c"})]
    mods = {"p", "p.x", "p.y", "p.z"}
    source = "import os\nfrom p import x\n\ndef f():\n    from .y import thing\n    from p.z import other\n"
    assert _edges("p.w", source, mods) == {"p.x", "p.y", "p.z"}
    assert _edges("p.w", "from p import helper\n", mods) == {"p"}


def test_no_import_cycle_among_product_modules() -> None:
    cycles = set(_cycles(_graph(_modules(PRODUCT))))
    new = cycles - KNOWN_CYCLES
    assert not new, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in new)


def test_each_package_imports_only_what_it_may() -> None:
    modules = _modules(PRODUCT + TOOLING)
    roles = ("worker", "requester", "verifier")
    wrong = []
    for m, path in modules.items():
        top = m.split(".")[0]
        tops = {n.split(".")[0] for n in _imports(m, path.read_text(), path.name == "__init__.py")}
        tops &= set(PRODUCT + TOOLING)
        allowed = {"veritrain"} | ({top} if top != "veritrain" else set())
        if top in TOOLING:
            allowed |= set(PRODUCT + TOOLING)  # tooling may drive anything; nothing imports tooling
        wrong += [f"{m} imports {t}" for t in sorted(tops - allowed)]
    assert not wrong, wrong
    assert {"veritrain"} | set(roles) == set(PRODUCT)


def test_the_package_holds_no_benchmark_demo_or_cheating_code() -> None:
    names = [m for m in _modules(("veritrain",))]
    suspicious = [m for m in names if any(w in m for w in ("bench", "demo", "adversar", "cheat"))]
    assert not suspicious, suspicious
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert all(not any(p.startswith(t) for t in TOOLING) for p in shipped["include"])
    for tool in TOOLING:  # each is importable from the checkout, with a Typer command line
        assert (ROOT / tool / "__init__.py").is_file() and (ROOT / tool / "__main__.py").is_file()
