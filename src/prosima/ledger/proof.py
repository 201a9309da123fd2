"""Proof documents: an inclusion proof or a consistency proof with its signed tree heads, as JSON
that anyone can check offline."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prosima.ledger.crypto import NODE_ID_SIZE, PUBLIC_KEY_SIZE, SIGN_TX, node_id_of, verify_signature
from prosima.ledger.errors import EncodingError, ProofError
from prosima.ledger.hexjson import get_hex, get_hex_list, get_int, loads, parse_hex, require_fields
from prosima.ledger.merkle import HASH_SIZE, leaf_hash, verify_consistency, verify_inclusion
from prosima.ledger.registry import Registry
from prosima.ledger.transaction import Transaction
from prosima.ledger.tree_head import SignedTreeHead

INCLUSION = "prosima.ledger.inclusion-proof"
CONSISTENCY = "prosima.ledger.consistency-proof"


def inclusion_document(
    tx: Transaction, leaf_index: int, path: list[bytes], head: SignedTreeHead, keys: Mapping[bytes, bytes]
) -> dict[str, Any]:
    """The JSON document proving ``tx`` is leaf ``leaf_index`` of the log under ``head``."""
    return {
        "type": INCLUSION,
        "version": 1,
        "transaction": tx.encode().hex(),
        "tx_id": tx.tx_id.hex(),
        "leaf_index": leaf_index,
        "inclusion_path": [p.hex() for p in path],
        "tree_head": head.to_json(),
        "keys": {k.hex(): v.hex() for k, v in sorted(keys.items())},
    }


def consistency_document(
    old: SignedTreeHead, new: SignedTreeHead, path: list[bytes], keys: Mapping[bytes, bytes]
) -> dict[str, Any]:
    """The JSON document proving the log under ``new`` only appended to the log under ``old``."""
    return {
        "type": CONSISTENCY,
        "version": 1,
        "old_tree_head": old.to_json(),
        "new_tree_head": new.to_json(),
        "consistency_path": [p.hex() for p in path],
        "keys": {k.hex(): v.hex() for k, v in sorted(keys.items())},
    }


@dataclass
class ProofCheck:
    """The verdict on a proof document. ``pinned`` says whether the signing keys were checked
    against a trusted registry or key rather than taken from the document itself."""

    ok: bool
    kind: str
    problems: list[str] = field(default_factory=list)
    pinned: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "ok": self.ok,
            "type": self.kind,
            "pinned": self.pinned,
            "problems": self.problems,
        } | self.details


def _keys(doc: dict[str, Any]) -> dict[bytes, bytes]:
    raw = doc["keys"]
    if not isinstance(raw, dict) or len(raw) > 1024:
        raise ProofError("keys must be an object of node id -> public key")
    keys = {}
    for node_hex, pk_hex in raw.items():
        node_id = parse_hex(node_hex, "keys: node id", NODE_ID_SIZE)
        pk = parse_hex(pk_hex, f"keys[{node_hex}]", PUBLIC_KEY_SIZE)
        if node_id_of(pk) != node_id:
            raise ProofError(f"keys[{node_hex}]: the public key does not belong to that node id")
        keys[node_id] = pk
    return keys


def _trust(
    signer: bytes, keys: dict[bytes, bytes], registry: Registry | None, trusted_key: bytes | None, what: str
) -> tuple[bytes | None, list[str]]:
    pk = keys.get(signer)
    if pk is None:
        return None, [f"{what} signer {signer.hex()} has no public key in the document"]
    problems = []
    if registry is not None and registry.public_key(signer) != pk:
        problems.append(f"{what} signer {signer.hex()} is not in the trusted registry")
    if trusted_key is not None and registry is None and pk != trusted_key:
        problems.append(f"{what} signer key is not the trusted key")
    return pk, problems


def check_document(
    document: str | bytes | Mapping[str, Any],
    *,
    registry: Registry | None = None,
    trusted_key: bytes | None = None,
) -> ProofCheck:
    """Check a proof document offline. Malformed input gives a failed check naming the problem,
    never an exception. Without ``registry`` or ``trusted_key`` the keys in the document are used."""
    doc: Any = None
    try:
        doc = loads(document) if isinstance(document, str | bytes) else dict(document)
        if not isinstance(doc, dict):
            raise ProofError("the document must be a JSON object")
        kind = doc.get("type")
        if kind == INCLUSION:
            return _check_inclusion(doc, registry, trusted_key)
        if kind == CONSISTENCY:
            return _check_consistency(doc, registry, trusted_key)
        raise ProofError(f"unknown document type {kind!r}")
    except (ProofError, EncodingError) as exc:
        kind = str(doc.get("type")) if isinstance(doc, dict) else "unknown"
        return ProofCheck(False, kind, [str(exc)])


def _check_inclusion(doc: dict[str, Any], registry: Registry | None, trusted_key: bytes | None) -> ProofCheck:
    fields = ("type", "version", "transaction", "tx_id", "leaf_index", "inclusion_path", "tree_head", "keys")
    d = require_fields(doc, fields, "inclusion proof")
    if get_int(d, "version", "inclusion proof") != 1:
        raise ProofError("inclusion proof: unsupported version")
    data = get_hex(d, "transaction", "inclusion proof")
    tx = Transaction.decode(data)
    tx_id = get_hex(d, "tx_id", "inclusion proof", HASH_SIZE)
    index = get_int(d, "leaf_index", "inclusion proof")
    path = get_hex_list(d, "inclusion_path", "inclusion proof", HASH_SIZE)
    head = SignedTreeHead.from_json(d["tree_head"])
    keys = _keys(d)
    problems: list[str] = []
    if tx.tx_id != tx_id:
        problems.append("tx_id is not the hash of the transaction")
    if not verify_inclusion(leaf_hash(data), index, head.tree_size, path, head.root_hash):
        problems.append("inclusion proof does not verify against the tree head")
    head_key, more = _trust(head.signer, keys, registry, trusted_key, "tree head")
    problems += more
    if head_key is not None and not head.verify(head_key):
        problems.append("tree head signature does not verify")
    tx_key, more = _trust(tx.signer, keys, registry, None, "transaction")
    problems += more
    if tx_key is not None and not verify_signature(tx_key, SIGN_TX, tx.signing_bytes(), tx.signature):
        problems.append("transaction signature does not verify")
    details = {
        "tx_id": tx_id.hex(),
        "kind": tx.kind,
        "leaf_index": index,
        "tree_size": head.tree_size,
        "root_hash": head.root_hash.hex(),
        "proof_bytes": HASH_SIZE * len(path),
    }
    pinned = registry is not None or trusted_key is not None
    return ProofCheck(not problems, INCLUSION, problems, pinned, details)


def _check_consistency(
    doc: dict[str, Any], registry: Registry | None, trusted_key: bytes | None
) -> ProofCheck:
    fields = ("type", "version", "old_tree_head", "new_tree_head", "consistency_path", "keys")
    d = require_fields(doc, fields, "consistency proof")
    if get_int(d, "version", "consistency proof") != 1:
        raise ProofError("consistency proof: unsupported version")
    old = SignedTreeHead.from_json(d["old_tree_head"])
    new = SignedTreeHead.from_json(d["new_tree_head"])
    path = get_hex_list(d, "consistency_path", "consistency proof", HASH_SIZE)
    keys = _keys(d)
    problems: list[str] = []
    if not verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, path):
        problems.append("consistency proof does not verify between the two tree heads")
    for name, head in (("old tree head", old), ("new tree head", new)):
        key, more = _trust(head.signer, keys, registry, trusted_key, name)
        problems += more
        if key is not None and not head.verify(key):
            problems.append(f"{name} signature does not verify")
    details = {"old_size": old.tree_size, "new_size": new.tree_size, "proof_bytes": HASH_SIZE * len(path)}
    pinned = registry is not None or trusted_key is not None
    return ProofCheck(not problems, CONSISTENCY, problems, pinned, details)


def dumps(document: Mapping[str, Any]) -> str:
    """Pretty JSON text for a proof document."""
    return json.dumps(document, indent=2, sort_keys=True)
