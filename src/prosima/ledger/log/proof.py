"""Proof documents: an inclusion proof or a consistency proof with its signed tree heads, as JSON
that anyone can check offline."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prosima.ledger.errors import EncodingError, ProofError
from prosima.ledger.log.crypto import NODE_ID_SIZE, PUBLIC_KEY_SIZE, SIGN_TX, node_id_of
from prosima.ledger.log.hexjson import get_hex, get_hex_list, get_int, loads, parse_hex, require_fields
from prosima.ledger.log.merkle import HASH_SIZE, leaf_hash, verify_consistency, verify_inclusion
from prosima.ledger.log.quorum import MAX_SIGNERS
from prosima.ledger.log.registry import Registry
from prosima.ledger.log.transaction import Transaction
from prosima.ledger.log.tree_head import SignedTreeHead

INCLUSION = "prosima.ledger.inclusion-proof"
CONSISTENCY = "prosima.ledger.consistency-proof"
VERSION = 2  # 1 had tree heads signed by one node; refused, by version, with a clear message


def inclusion_document(
    tx: Transaction, leaf_index: int, path: list[bytes], head: SignedTreeHead, registry: Registry
) -> dict[str, Any]:
    """The JSON document proving ``tx`` is leaf ``leaf_index`` of the log under ``head``."""
    return {
        "type": INCLUSION,
        "version": VERSION,
        "transaction": tx.encode().hex(),
        "tx_id": tx.tx_id.hex(),
        "leaf_index": leaf_index,
        "inclusion_path": [p.hex() for p in path],
        "tree_head": head.to_json(),
        "keys": _keys_json(registry),
    }


def consistency_document(
    old: SignedTreeHead, new: SignedTreeHead, path: list[bytes], registry: Registry
) -> dict[str, Any]:
    """The JSON document proving the log under ``new`` only appended to the log under ``old``."""
    return {
        "type": CONSISTENCY,
        "version": VERSION,
        "old_tree_head": old.to_json(),
        "new_tree_head": new.to_json(),
        "consistency_path": [p.hex() for p in path],
        "keys": _keys_json(registry),
    }


def _keys_json(registry: Registry) -> dict[str, str]:
    """Every registered key: an unpinned reader needs the whole registry to know the threshold."""
    return {node_id.hex(): pk.hex() for node_id, pk in registry.members.items()}


@dataclass
class ProofCheck:
    """The verdict on a proof document. ``pinned`` says whether the keys were checked against a
    trusted registry rather than taken from the document itself."""

    ok: bool
    kind: str
    problems: list[str] = field(default_factory=list)
    pinned: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    is_proof: bool = True  # False: not JSON, not an object, or not a proof document's type

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "ok": self.ok,
            "type": self.kind,
            "pinned": self.pinned,
            "problems": self.problems,
        } | self.details


def _document_registry(doc: dict[str, Any]) -> Registry:
    raw = doc["keys"]
    if not isinstance(raw, dict) or not 1 <= len(raw) <= MAX_SIGNERS:
        raise ProofError("keys must be an object of node id -> public key")
    keys = []
    for node_hex, pk_hex in raw.items():
        node_id = parse_hex(node_hex, "keys: node id", NODE_ID_SIZE)
        pk = parse_hex(pk_hex, f"keys[{node_hex}]", PUBLIC_KEY_SIZE)
        if node_id_of(pk) != node_id:
            raise ProofError(f"keys[{node_hex}]: the public key does not belong to that node id")
        keys.append(pk)
    try:
        return Registry(keys)
    except ValueError as exc:
        raise ProofError(f"keys: {exc}") from None


def _version(d: dict[str, Any], what: str) -> None:
    version = get_int(d, "version", what)
    if version == 1:
        raise ProofError(
            f"{what}: version 1 documents carry a tree head signed by one node and are no longer "
            "accepted; make a new one with 'prosima ledger proof'"
        )
    if version != VERSION:
        raise ProofError(f"{what}: unsupported version {version}")


def check_document(
    document: str | bytes | Mapping[str, Any], *, registry: Registry | None = None
) -> ProofCheck:
    """Check a proof document offline. Malformed input gives a failed check naming the problem,
    never an exception. Tree heads must carry a quorum certificate of ``registry`` (pinned) or,
    without one, of the registry the document lists (then ``pinned`` is false)."""
    doc: Any = None
    try:
        if isinstance(document, str | bytes):
            doc = loads(document)
        elif isinstance(document, Mapping):
            doc = dict(document)
        else:
            raise ProofError(f"a proof document is JSON text or an object, not {type(document).__name__}")
        if not isinstance(doc, dict):
            raise ProofError("the document must be a JSON object")
        kind = doc.get("type")
        if kind == INCLUSION:
            return _check_inclusion(doc, registry)
        if kind == CONSISTENCY:
            return _check_consistency(doc, registry)
        raise ProofError(f"unknown document type {kind!r}")
    except (ProofError, EncodingError) as exc:
        kind = str(doc.get("type")) if isinstance(doc, dict) else "unknown"
        return ProofCheck(False, kind, [str(exc)], is_proof=kind in (INCLUSION, CONSISTENCY))


def _head_problems(name: str, head: SignedTreeHead, registry: Registry) -> list[str]:
    problem = head.check(registry)
    return [] if problem is None else [f"{name} certificate: {problem}"]


def _check_inclusion(doc: dict[str, Any], pinned: Registry | None) -> ProofCheck:
    fields = ("type", "version", "transaction", "tx_id", "leaf_index", "inclusion_path", "tree_head", "keys")
    d = require_fields(doc, fields, "inclusion proof")
    _version(d, "inclusion proof")
    data = get_hex(d, "transaction", "inclusion proof")
    tx = Transaction.decode(data)
    tx_id = get_hex(d, "tx_id", "inclusion proof", HASH_SIZE)
    index = get_int(d, "leaf_index", "inclusion proof")
    path = get_hex_list(d, "inclusion_path", "inclusion proof", HASH_SIZE)
    head = SignedTreeHead.from_json(d["tree_head"])
    registry = pinned if pinned is not None else _document_registry(d)
    problems: list[str] = []
    if tx.tx_id != tx_id:
        problems.append("tx_id is not the hash of the transaction")
    if not verify_inclusion(leaf_hash(data), index, head.tree_size, path, head.root_hash):
        problems.append("inclusion proof does not verify against the tree head")
    problems += _head_problems("tree head", head, registry)
    if tx.signer not in registry:
        problems.append(f"transaction signer {tx.signer.hex()} is not in the registry")
    elif not registry.verify(tx.signer, SIGN_TX, tx.signing_bytes(), tx.signature):
        problems.append("transaction signature does not verify")
    details = {
        "tx_id": tx_id.hex(),
        "kind": tx.kind,
        "leaf_index": index,
        "tree_size": head.tree_size,
        "root_hash": head.root_hash.hex(),
        "height": head.height,
        "proof_bytes": HASH_SIZE * len(path),
    }
    return ProofCheck(not problems, INCLUSION, problems, pinned is not None, details)


def _check_consistency(doc: dict[str, Any], pinned: Registry | None) -> ProofCheck:
    fields = ("type", "version", "old_tree_head", "new_tree_head", "consistency_path", "keys")
    d = require_fields(doc, fields, "consistency proof")
    _version(d, "consistency proof")
    old = SignedTreeHead.from_json(d["old_tree_head"])
    new = SignedTreeHead.from_json(d["new_tree_head"])
    path = get_hex_list(d, "consistency_path", "consistency proof", HASH_SIZE)
    registry = pinned if pinned is not None else _document_registry(d)
    problems = consistency_problems(old, new, path, registry)
    details = {"old_size": old.tree_size, "new_size": new.tree_size, "proof_bytes": HASH_SIZE * len(path)}
    return ProofCheck(not problems, CONSISTENCY, problems, pinned is not None, details)


def consistency_problems(
    old: SignedTreeHead, new: SignedTreeHead, path: list[bytes], registry: Registry
) -> list[str]:
    """What is wrong with the claim that the log under ``new`` only appended to ``old`` (both
    certified by ``registry``): nothing when it holds; a shrunk or forked log is named so."""
    problems = _head_problems("old tree head", old, registry) + _head_problems("new tree head", new, registry)
    if new.tree_size < old.tree_size:
        problems.append(f"the log shrank from {old.tree_size} to {new.tree_size} entries (rolled back)")
    elif not verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, path):
        problems.append(
            f"the log of {new.tree_size} entries does not extend the one of {old.tree_size} "
            "(forked or rewritten)"
        )
    return problems


def dumps(document: Mapping[str, Any]) -> str:
    """Pretty JSON text for a proof document."""
    return json.dumps(document, indent=2, sort_keys=True)
