"""Model versions on the ledger: anchor a set of weights (Protocol 1, lines 9-12), and say later
whether a weights file is an anchored version and which training round made it.

A version is named by ``state_digest`` of its weights (``prosima.models.artifact``: SHA-256 over
names, shapes and float32 values), not by the bytes of the file, so the same weights saved twice,
re-exported or rewritten in a newer model-file format keep their name: records anchored before the
model-file format verify unchanged. Any model file can be anchored: a restorer or encoder
checkpoint, exported weights, an X-Mark model or fusion weights (also in their earlier formats).
The transaction's payload is canonical CBOR (which has no floats: metrics are recorded as their
shortest round-trip decimal text); its index key is the 32-byte digest, so a lookup needs no scan.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prosima.fusion.checkpoint import read_unversioned_fusion
from prosima.ledger.errors import LedgerError
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.encoding import encode
from prosima.ledger.log.proof import check_document
from prosima.ledger.log.transaction import TxKind
from prosima.models.artifact import Artifact, load_artifact
from prosima.provenance.records import decode_record
from prosima.watermark.classifier import read_unversioned_xmark

RECORD_FORMAT = "prosima.model-version.v1"


class ModelVersionError(LedgerError):
    """A model-version record that is malformed or does not match its weights."""


@dataclass(frozen=True)
class ModelVersion:
    """What the ledger records of one set of weights."""

    digest: str
    name: str
    kind: str
    round: int | None = None
    rounds: int | None = None
    sites: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    config_digest: str | None = None
    seeds: dict[str, int] = field(default_factory=dict)
    parent: str | None = None

    def __post_init__(self) -> None:
        if len(self.digest) != 64 or any(c not in "0123456789abcdef" for c in self.digest):
            raise ModelVersionError(f"digest must be 64 lower-case hex digits, got {self.digest!r}")

    def payload(self) -> bytes:
        """The canonical CBOR bytes committed to the ledger."""
        body = {k: v for k, v in asdict(self).items() if v is not None}
        body["metrics"] = {k: repr(float(v)) for k, v in self.metrics.items()}
        return encode({"format": RECORD_FORMAT, **body})

    @classmethod
    def from_payload(cls, data: bytes) -> ModelVersion:
        """Parse a committed payload; ``ModelVersionError`` when it is not a model-version record."""
        body = decode_record(data, RECORD_FORMAT, ModelVersionError, "model-version")
        try:
            body["metrics"] = {k: float(v) for k, v in body.get("metrics", {}).items()}
            return cls(**body)
        except (TypeError, ValueError, AttributeError) as exc:
            raise ModelVersionError(f"malformed {RECORD_FORMAT} record: {exc}") from None


def _read_unversioned(payload: dict[str, Any]) -> Artifact:
    """A model file from before the model-file format: fusion weights or an X-Mark model."""
    return read_unversioned_fusion(payload) if "weights" in payload else read_unversioned_xmark(payload)


def weights_digest(path: str | Path) -> tuple[str, Artifact]:
    """``state_digest`` of the weights in a model file (a checkpoint or exported weights), and the
    file's contents."""
    artifact = load_artifact(path, what="checkpoint", legacy=_read_unversioned)
    return artifact.digest, artifact


def anchor_version(ledger: Ledger, version: ModelVersion) -> dict[str, Any]:
    """Commit ``version`` as one ``model.version`` transaction in its own block."""
    block = ledger.append([Entry(version.payload(), TxKind.MODEL_VERSION, bytes.fromhex(version.digest))])
    return {"tx": block.txs[0].tx_id.hex(), "height": block.header.height}


def find_versions(ledger: Ledger, digest: str) -> list[dict[str, Any]]:
    """Every anchored record of the weights ``digest``, oldest first, each with an inclusion proof
    checked against the ledger's registry (``proof_ok``)."""
    found = []
    for tx_id, height, _index in ledger.store.txs_by_key(bytes.fromhex(digest)):
        tx, _, _ = ledger.store.find_tx(tx_id)
        if tx.kind != TxKind.MODEL_VERSION:
            continue
        version = ModelVersion.from_payload(tx.payload)
        if version.digest != digest:
            raise ModelVersionError(
                f"transaction {tx_id.hex()} is indexed under {digest} but records {version.digest}"
            )
        proof = ledger.inclusion_proof(tx_id)
        check = check_document(proof, registry=ledger.registry)
        found.append(
            {
                "tx": tx_id.hex(),
                "height": height,
                "time_us": tx.time,
                "version": asdict(version),
                "proof_ok": check.ok,
                "proof_problems": check.problems,
            }
        )
    return found


def list_versions(ledger: Ledger) -> list[dict[str, Any]]:
    """Every model version anchored on ``ledger``, oldest first (read from the blocks up to the
    verified tip, as the record index reads image records)."""
    from prosima.ledger.log.transaction import Transaction

    found = []
    for raw in ledger.store.raw_blocks(0, ledger.store.height + 1):
        for data in raw.txs:
            tx = Transaction.decode(data)
            if tx.kind == TxKind.MODEL_VERSION:
                version = ModelVersion.from_payload(tx.payload)
                found.append(
                    {
                        "tx": tx.tx_id.hex(),
                        "height": raw.position,
                        "time_us": tx.time,
                        "version": asdict(version),
                    }
                )
    return found


def anchor_model(ledger: Ledger, ref: str) -> dict[str, Any]:
    """Anchor the weights ``ref`` (``pretrained:NAME`` or a file) unless already anchored."""
    from prosima.models.pretrained import PRETRAINED_PREFIX, verify_pretrained

    if ref.startswith(PRETRAINED_PREFIX):
        path, _card = verify_pretrained(ref.removeprefix(PRETRAINED_PREFIX))
    else:
        path = Path(ref)
    digest, artifact = weights_digest(path)
    name = str(artifact.meta.get("name") or Path(path).stem)
    found = [f for f in find_versions(ledger, digest) if f["proof_ok"]]
    if found:
        return {
            "name": name,
            "digest": digest,
            "tx": found[0]["tx"],
            "height": found[0]["height"],
            "existing": True,
        }
    version = ModelVersion(digest=digest, name=name, kind=artifact.kind)
    return {"name": name, "digest": digest, **anchor_version(ledger, version), "existing": False}
