"""``prosima.watermark`` stands beside the imaging half: it never imports the ledger or the layers
that join halves; only ``prosima.provenance.watermark_keys`` joins it with the ledger."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "prosima"
FORBIDDEN = ("prosima.ledger", "prosima.provenance", "prosima.federated", "prosima.pipelines", "prosima.cli")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_watermark_does_not_import_the_ledger():
    files = sorted((SRC / "watermark").rglob("*.py"))
    assert files
    offenders = {f.name: sorted(n for n in _imports(f) if n.startswith(FORBIDDEN)) for f in files}
    assert not {k: v for k, v in offenders.items() if v}
    assert not any(n.startswith("torchvision") for f in files for n in _imports(f))
