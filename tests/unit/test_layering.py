"""The package layering holds: no import cycle among the product's modules (module-level and
function-level imports alike, TYPE_CHECKING ones too), veritrain imports no role, no role imports
another, no module uses another module's private names, and nothing the product ships holds
benchmark, demo or cheating code (those live in bench/, demo/, adversary/)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("veritrain", "worker", "requester", "verifier")
TOOLING = ("bench", "demo", "adversary")


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
    cycles = _cycles(_graph(_modules(PRODUCT)))
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


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


def _private_uses(module: str, source: str, modules: set[str], is_package: bool = False) -> list[str]:
    """Where ``module`` reaches into another module's privates (a name with one leading underscore):
    ``from other import _f``, ``other._f`` for an imported product module, and ``obj._x`` on any
    object but ``self``/``cls`` when ``_x`` is not a name this module's own source defines."""
    tree = ast.parse(source)
    package = module.split(".") if is_package else module.split(".")[:-1]
    own: set[str] = set()  # private names this module defines (functions, classes, attributes, fields)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            own.add(node.target.id)
    aliases: dict[str, str] = {}  # local name -> imported module (product or not)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                if f"{base}.{a.name}" in modules:
                    aliases[a.asname or a.name] = f"{base}.{a.name}"
                elif _private(a.name) and base in modules and base != module:
                    found.append(f"{module}:{node.lineno} imports {base}.{a.name}")
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)):
            continue
        name = node.value.id
        if name in ("self", "cls"):
            continue
        if name in aliases:
            if aliases[name] in modules and aliases[name] != module:
                found.append(f"{module}:{node.lineno} uses {aliases[name]}.{node.attr}")
        elif node.attr not in own:
            found.append(f"{module}:{node.lineno} uses {name}.{node.attr}, private to another module")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_the_private_checker_sees_each_way_in() -> None:
    mods = {"p", "p.a", "p.b"}
    assert _private_uses("p.b", "from p.a import _helper\n", mods) == ["p.b:1 imports p.a._helper"]
    assert _private_uses("p.b", "from p import a\na._helper()\n", mods) == ["p.b:2 uses p.a._helper"]
    assert _private_uses("p.b", "def f(job):\n    return job._from_block\n", mods) == [
        "p.b:2 uses job._from_block, private to another module"]
    # its own privates, dunders and self's are fine
    ok = ("def _h():\n    pass\nclass C:\n    _x = 1\n"
          "    def m(self, o):\n        return o._x, self._y, o.__dict__\n")
    assert _private_uses("p.b", ok + "_h()\n", mods) == []


def test_no_module_uses_another_module_s_private_names() -> None:
    modules = _modules(PRODUCT)
    found = [f for m, p in modules.items()
             for f in _private_uses(m, p.read_text(), set(modules), p.name == "__init__.py")]
    assert not found, found
