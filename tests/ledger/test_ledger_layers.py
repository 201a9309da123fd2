"""The ledger's subpackages depend one way: log <- consensus <- sim, and log, consensus <-
useful_work. Checked on the source with ``ast`` (imports inside functions and ``TYPE_CHECKING``
blocks count too)."""

import ast
from pathlib import Path

import pytest

LEDGER = Path(__file__).resolve().parents[2] / "src" / "prosima" / "ledger"


def _module_of(path: Path, ledger: Path) -> str:
    parts = path.relative_to(ledger.parents[1]).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, ledger: Path) -> set[str]:
    """Every module ``path`` imports (and every name it imports from one), relative imports resolved."""
    module = _module_of(path, ledger)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            full = ".".join([*base, node.module] if node.module else base)
            names.add(full)
            names |= {f"{full}.{a.name}" for a in node.names}
    return names


def _offenders(sub: str, forbidden: str, ledger: Path = LEDGER) -> dict[str, list[str]]:
    files = sorted((ledger / sub).rglob("*.py"))
    assert files, sub
    found = {
        f.name: sorted(n for n in _imports(f, ledger) if n == forbidden or n.startswith(f"{forbidden}."))
        for f in files
    }
    return {k: v for k, v in found.items() if v}


@pytest.mark.parametrize(
    ("sub", "forbidden"),
    [
        ("log", "prosima.ledger.consensus"),
        ("log", "prosima.ledger.sim"),
        ("log", "prosima.ledger.useful_work"),
        ("consensus", "prosima.ledger.sim"),
        ("consensus", "prosima.ledger.useful_work"),
        ("useful_work", "prosima.ledger.sim"),
        ("sim", "prosima.ledger.useful_work"),
    ],
)
def test_ledger_subpackages_depend_one_way(sub, forbidden):
    assert not _offenders(sub, forbidden)


def test_the_checker_sees_relative_and_deferred_imports(tmp_path):
    pkg = tmp_path / "prosima" / "ledger" / "consensus"
    pkg.mkdir(parents=True)
    source = pkg / "bad.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..sim import byzantine\n"
        "def f():\n    import prosima.ledger.sim.network\n"
    )
    assert _offenders("consensus", "prosima.ledger.sim", tmp_path / "prosima" / "ledger") == {
        "bad.py": ["prosima.ledger.sim", "prosima.ledger.sim.byzantine", "prosima.ledger.sim.network"]
    }
