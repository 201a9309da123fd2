"""No two modules of ``prosima`` import each other, directly or through others: the import graph of
src/prosima (every import statement, those inside functions included; not those under
``if TYPE_CHECKING:``, which never run) has no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "prosima"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement may load: the module, and each imported name as a
    submodule (``from a import b`` loads ``a.b`` when that is a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target, *(f"{target}.{a.name}" for a in node.names)]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(node: ast.AST) -> list[ast.AST]:
    """Every node under ``node`` that runs: the bodies of ``if TYPE_CHECKING:`` left out."""
    found: list[ast.AST] = []
    for child in ast.iter_child_nodes(node):
        kept = child.orelse if isinstance(child, ast.If) and _is_type_checking(child.test) else [child]
        for stmt in kept:
            found += [stmt, *_statements(stmt)]
    return found


def module_imports(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``source`` (the text of ``module``) imports when it runs."""
    edges: set[str] = set()
    for node in _statements(ast.parse(source)):
        edges |= {t for t in _imported(node, module, is_package) if t in known and t != module}
    return edges


def import_graph() -> dict[str, set[str]]:
    """Each prosima module and the prosima modules it imports."""
    modules = _modules()
    return {
        name: module_imports(path.read_text(), name, path.name == "__init__.py", set(modules))
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_finder_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_inside_functions_count_and_type_checking_ones_do_not():
    source = """
from typing import TYPE_CHECKING
from . import b
if TYPE_CHECKING:
    from p.c import C
else:
    import p.d
def f():
    from p.e import thing
"""
    known = {"p.a", "p.b", "p.c", "p.d", "p.e"}
    assert module_imports(source, "p.a", False, known) == {"p.b", "p.d", "p.e"}


def test_the_graph_covers_the_package():
    graph = import_graph()
    assert {"prosima.cli", "prosima.errors", "prosima.app"} <= set(graph)
    assert "prosima.errors" in graph["prosima.ledger.errors"]


def test_prosima_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])
