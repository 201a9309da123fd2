"""The learning half imports the imaging half, never the ledger; nothing in it downloads."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "prosima" / "models"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_models_never_import_the_ledger_or_torchvision():
    files = sorted(SRC.rglob("*.py"))
    assert files
    for f in files:
        bad = {n for n in _imports(f) if n.startswith(("prosima.ledger", "torchvision", "prosima.bench"))}
        assert not bad, f"{f.name} imports {bad}"


def test_nothing_downloads():
    for f in SRC.rglob("*.py"):
        text = f.read_text()
        for word in ("http://", "https://", "hf_hub", "load_state_dict_from_url", "PerceptualLoss", "urllib"):
            assert word not in text, f"{f.name} mentions {word}"
