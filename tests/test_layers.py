"""The imaging half and the ledger half never import each other; only the layers above join them."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "prosima"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    ("half", "forbidden"),
    [
        ("imaging", "prosima.ledger"),
        ("imaging", "prosima.models"),
        ("ledger", "prosima.imaging"),
        ("ledger", "prosima.models"),
        ("models", "prosima.ledger"),
        *(
            (half, joined)
            for half in ("imaging", "models", "ledger")
            for joined in ("prosima.provenance", "prosima.federated", "prosima.pipelines")
        ),
        ("provenance", "prosima.pipelines"),
        ("provenance", "prosima.cli"),
        *(
            ("fusion", joined)
            for joined in (
                "prosima.ledger",
                "prosima.provenance",
                "prosima.federated",
                "prosima.pipelines",
                "prosima.watermark",
                "prosima.cli",
            )
        ),
        *(
            ("watermark", joined)
            for joined in (
                "prosima.ledger",
                "prosima.provenance",
                "prosima.federated",
                "prosima.pipelines",
                "prosima.cli",
            )
        ),
    ],
)
def test_halves_do_not_import_each_other(half, forbidden):
    files = sorted((SRC / half).rglob("*.py"))
    assert files
    offenders = {f.name: sorted(n for n in _imports(f) if n.startswith(forbidden)) for f in files}
    assert not {k: v for k, v in offenders.items() if v}


def test_imaging_does_not_need_torch():
    for f in (SRC / "imaging").rglob("*.py"):
        assert not any(n.split(".")[0] == "torch" for n in _imports(f)), f.name


def test_watermark_never_uses_torchvision():
    files = sorted((SRC / "watermark").rglob("*.py"))
    assert files
    assert not any(n.startswith("torchvision") for f in files for n in _imports(f))
