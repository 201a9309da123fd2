"""Anchor a set of weights as a model version, check whether a weights file is one (and which
federated round made it), and list every version anchored on an open ledger."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prosima.app.ledger_queries import iso_time
from prosima.ledger.log.directory import Ledger
from prosima.provenance.model_versions import anchor_model, find_versions, list_versions, weights_digest


@dataclass(frozen=True)
class ModelAnchor:
    """A model version on the ledger; ``existing``: it was anchored before (nothing committed now)."""

    name: str
    digest: str
    tx: str
    height: int
    existing: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "tx": self.tx,
            "height": self.height,
            "existing": self.existing,
        }


@dataclass(frozen=True)
class ModelCheck:
    """Every record of a weights file's digest, each with its inclusion proof checked; ``anchored``
    when one of them verifies."""

    weights: Path
    digest: str
    records: list[dict[str, Any]]

    @property
    def anchored(self) -> bool:
        return any(r["proof_ok"] for r in self.records)

    def to_json(self) -> dict[str, Any]:
        return {
            "weights": str(self.weights),
            "digest": self.digest,
            "anchored": self.anchored,
            "records": self.records,
        }


def anchor_model_version(ledger: Path, weights: str) -> ModelAnchor:
    """Anchor ``weights`` (``pretrained:NAME`` or a checkpoint / exported weights file) as a model
    version, unless it already is one."""
    with Ledger.open(ledger) as led:
        result = anchor_model(led, weights)
    return ModelAnchor(result["name"], result["digest"], result["tx"], result["height"], result["existing"])


def check_model_version(weights: Path, ledger: Path) -> ModelCheck:
    """The records of the weights in ``weights`` on ``ledger``, oldest first."""
    digest, _ = weights_digest(weights)
    with Ledger.open(ledger) as led:
        return ModelCheck(weights, digest, find_versions(led, digest))


def anchored_versions(led: Ledger) -> list[dict[str, Any]]:
    """Every model version anchored on the open ledger ``led``, oldest first (times in ISO 8601)."""
    return [
        {"tx": v["tx"], "height": v["height"], "time_iso": iso_time(v["time_us"]), "version": v["version"]}
        for v in list_versions(led)
    ]
