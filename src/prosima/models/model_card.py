"""Model cards: what a set of shipped weights is, how it was made, how well it did, and its SHA-256.

Each card is a JSON file beside the weights (``NAME.card.json``, read by ``load_pretrained``) with a
Markdown rendering for people (``NAME.md``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CARD_FORMAT = "prosima.model-card.v1"


@dataclass
class ModelCard:
    """Everything a user needs to trust and reproduce a set of weights."""

    name: str
    kind: str
    file: str
    sha256: str
    state_digest: str
    parameters: int
    dtype: str
    spec: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    format: str = CARD_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def card_paths(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Where the JSON card and its Markdown rendering of ``name`` live."""
    d = Path(directory)
    return d / f"{name}.card.json", d / f"{name}.md"


def write_model_card(card: ModelCard, directory: str | Path) -> tuple[Path, Path]:
    """Write ``NAME.card.json`` and ``NAME.md`` into ``directory``."""
    json_path, md_path = card_paths(directory, card.name)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(card.to_dict(), indent=2, sort_keys=False) + "\n")
    md_path.write_text(render_markdown(card))
    return json_path, md_path


def read_model_card(path: str | Path) -> ModelCard:
    """Read a JSON model card."""
    d = json.loads(Path(path).read_text())
    if d.get("format") != CARD_FORMAT:
        raise ValueError(f"{path}: not a {CARD_FORMAT} model card")
    known = {f.name for f in dataclasses.fields(ModelCard)}
    return ModelCard(**{k: v for k, v in d.items() if k in known})


def _table(d: dict[str, Any]) -> str:
    if not d:
        return "(none)\n"
    rows = "\n".join(f"| {k} | {json.dumps(v) if isinstance(v, dict | list) else v} |" for k, v in d.items())
    return "| field | value |\n| --- | --- |\n" + rows + "\n"


def _curve_table(curve: list[dict[str, Any]]) -> str:
    """Validation PSNR (dB) at each cumulative step, one column per validation sigma."""
    keys = sorted({k for row in curve for k in row if k.startswith("val_psnr@")})
    if not curve or not keys:
        return ""
    head = "| step | " + " | ".join(f"PSNR {k.removeprefix('val_psnr@')}" for k in keys) + " |\n"
    rule = "| --- |" + " --- |" * len(keys) + "\n"
    body = "".join(
        f"| {row['step']} | " + " | ".join(f"{row[k]:.2f}" if k in row else "-" for k in keys) + " |\n"
        for row in curve
    )
    return "\n## Learning curve (validation, cumulative steps)\n\n" + head + rule + body


def render_markdown(card: ModelCard) -> str:
    """A human-readable card."""
    training = {k: v for k, v in card.training.items() if k != "curve"}
    return (
        f"# {card.name}\n\n"
        f"{card.kind}, {card.parameters:,} parameters, stored as {card.dtype} in `{card.file}`.\n\n"
        f"SHA-256 of the file: `{card.sha256}`\n\n"
        f"Weights digest (float32 values): `{card.state_digest}`\n\n"
        + (f"{card.notes}\n\n" if card.notes else "")
        + "## Data\n\n"
        + _table(card.data)
        + "\n## Split\n\n"
        + _table(card.split)
        + "\n## Training\n\n"
        + _table(training)
        + _curve_table(card.training.get("curve") or [])
        + "\n## Validation\n\n"
        + _table(card.validation)
        + "\n## Linked models\n\n"
        + _table(card.links)
        + "\n## Architecture\n\n"
        + _table(card.spec)
        + "\n## Resolved config\n\n```json\n"
        + json.dumps(card.config, indent=2)
        + "\n```\n"
    )
