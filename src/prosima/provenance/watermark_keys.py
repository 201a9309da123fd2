"""Watermark keys on the ledger: commit the owner's key before the data set is released, so that a
later ownership claim rests on a timestamped prior commitment; and check a key file against it.

The transaction (kind ``watermark.key``) is indexed by the key's 32-byte digest (SHA-256 of its
canonical JSON, ``WatermarkKey.digest``); its payload is canonical CBOR of the digest, the method,
target, marked fraction, marker parameters, the weight and file digests, the seeds and the marked
images' pixel SHA-256 (as bytes). CBOR has no floats here: they are stored as repr strings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from prosima.ledger.errors import LedgerError
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.encoding import encode
from prosima.ledger.log.proof import check_document
from prosima.provenance.records import decode_record
from prosima.watermark.key import WatermarkKey

RECORD_FORMAT = "prosima.watermark-key-record.v1"
KIND = "watermark.key"


class WatermarkKeyError(LedgerError):
    """A watermark-key record that is malformed or does not match its key."""


def _floats(d: dict[str, Any]) -> dict[str, Any]:
    return {k: repr(float(v)) if isinstance(v, float) else v for k, v in d.items()}


@dataclass(frozen=True)
class WatermarkKeyRecord:
    """What the ledger records of one key."""

    digest: str
    method: str
    target: int
    marked_fraction: str
    marker: dict[str, Any]
    marked: list[bytes]
    files: dict[str, str] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.digest) != 64 or any(c not in "0123456789abcdef" for c in self.digest):
            raise WatermarkKeyError(f"digest must be 64 lower-case hex digits, got {self.digest!r}")

    @classmethod
    def of(cls, key: WatermarkKey) -> WatermarkKeyRecord:
        """The record of ``key``."""
        return cls(
            digest=key.digest(),
            method=key.method,
            target=key.target,
            marked_fraction=repr(float(key.marked_fraction)),
            marker=_floats(key.marker),
            marked=[bytes.fromhex(h) for h in key.marked_hashes],
            files={role: entry["sha256"] for role, entry in key.files.items()},
            weights=dict(key.weights),
            seeds=dict(key.seeds),
        )

    def payload(self) -> bytes:
        """The canonical CBOR bytes committed to the ledger."""
        return encode({"format": RECORD_FORMAT, **asdict(self)})

    @classmethod
    def from_payload(cls, data: bytes) -> WatermarkKeyRecord:
        """Parse a committed payload; ``WatermarkKeyError`` when it is not a watermark-key record."""
        body = decode_record(data, RECORD_FORMAT, WatermarkKeyError, "watermark-key")
        try:
            return cls(**body)
        except TypeError as exc:
            raise WatermarkKeyError(f"malformed {RECORD_FORMAT} record: {exc}") from None


def commit_key(ledger: Ledger, key: WatermarkKey) -> dict[str, Any]:
    """Commit ``key`` as one ``watermark.key`` transaction in its own block."""
    record = WatermarkKeyRecord.of(key)
    block = ledger.append([Entry(record.payload(), KIND, bytes.fromhex(record.digest))])
    return {
        "digest": record.digest,
        "tx": block.txs[0].tx_id.hex(),
        "height": block.header.height,
        "time_us": block.txs[0].time,
    }


def find_keys(ledger: Ledger, digest: str) -> list[dict[str, Any]]:
    """Every committed record of the key ``digest``, oldest first, each with an inclusion proof
    checked against the ledger's registry (``proof_ok``)."""
    found = []
    for tx_id, height, _index in ledger.store.txs_by_key(bytes.fromhex(digest)):
        tx, _, _ = ledger.store.find_tx(tx_id)
        if tx.kind != KIND:
            continue
        record = WatermarkKeyRecord.from_payload(tx.payload)
        if record.digest != digest:
            raise WatermarkKeyError(
                f"transaction {tx_id.hex()} is indexed under {digest} but records {record.digest}"
            )
        check = check_document(ledger.inclusion_proof(tx_id), registry=ledger.registry)
        found.append(
            {
                "tx": tx_id.hex(),
                "height": height,
                "time_us": tx.time,
                "record": record,
                "proof_ok": check.ok,
                "proof_problems": check.problems,
            }
        )
    return found


def check_key(ledger: Ledger, key: WatermarkKey) -> dict[str, Any]:
    """Whether ``key`` was committed: ``committed`` (a record with a good proof whose contents match
    the key), the earliest such ``tx``/``height``/``time_us``, and ``problems`` otherwise."""
    digest = key.digest()
    expected = WatermarkKeyRecord.of(key)
    problems: list[str] = []
    good = []
    for f in find_keys(ledger, digest):
        if not f["proof_ok"]:
            problems.append(f"record {f['tx']}: inclusion proof failed: {'; '.join(f['proof_problems'])}")
        elif f["record"] != expected:
            problems.append(f"record {f['tx']}: contents differ from the key")
        else:
            good.append(f)
    if not good and not problems:
        problems.append(f"no watermark key {digest} on the ledger")
    first = good[0] if good else {}
    return {
        "digest": digest,
        "committed": bool(good),
        "tx": first.get("tx"),
        "height": first.get("height"),
        "time_us": first.get("time_us"),
        "problems": problems,
    }
