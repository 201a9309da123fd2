"""The signed messages of a round: commits (a node's commitment, stamped with the tick it arrived)
and reveals (its weights, salt and claimed score), and how a validator opens one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prosima.ledger.errors import EncodingError
from prosima.ledger.log.crypto import NodeKey
from prosima.ledger.log.encoding import decode, encode, expect_map
from prosima.ledger.log.registry import Registry
from prosima.ledger.useful_work.scores import score_text

SIGN_COMMIT = b"PROSIMA/sign/pouw-commit/v1\x00"
SIGN_REVEAL = b"PROSIMA/sign/pouw-reveal/v1\x00"
COMMIT_FIELDS = {"v": int, "round": int, "prev": bytes, "node": bytes, "commitment": bytes}
REVEAL_FIELDS = {"v": int, "round": int, "node": bytes, "weights": bytes, "salt": bytes, "score": str}


@dataclass(frozen=True, slots=True)
class Signed:
    """A canonical CBOR body and its signer's Ed25519 signature over a context label and it."""

    body: bytes
    signature: bytes

    @classmethod
    def make(cls, key: NodeKey, context: bytes, fields: Mapping[str, Any]) -> Signed:
        """Encode ``fields`` and sign them."""
        body = encode(dict(fields))
        return cls(body, key.sign(context, body))


@dataclass(frozen=True, slots=True)
class Delivery:
    """A commit as the network delivered it: the message and the tick it arrived at."""

    message: Signed
    tick: int


def make_commit(key: NodeKey, round_no: int, prev: bytes, commit: bytes) -> Signed:
    """A signed commit message."""
    fields = {"v": 1, "round": round_no, "prev": prev, "node": key.node_id, "commitment": commit}
    return Signed.make(key, SIGN_COMMIT, fields)


def make_reveal(key: NodeKey, round_no: int, weights: bytes, salt: bytes, claimed: float) -> Signed:
    """A signed reveal message."""
    fields = {"v": 1, "round": round_no, "node": key.node_id, "weights": weights, "salt": salt}
    return Signed.make(key, SIGN_REVEAL, fields | {"score": score_text(claimed)})


def open_message(
    msg: Signed, context: bytes, fields: Mapping[str, type], registry: Registry, round_no: int
) -> dict[str, Any] | str:
    """The checked fields of ``msg``, or why it is dropped (encoding, version, signature, round)."""
    try:
        value = expect_map(decode(msg.body), fields, "message")
    except EncodingError as exc:
        return f"malformed: {exc}"
    if value["v"] != 1:
        return f"unsupported version {value['v']}"
    if not registry.verify(value["node"], context, msg.body, msg.signature):
        who = "an unregistered node" if value["node"] not in registry else "the node it names"
        return f"signature does not verify for {who}"
    if value["round"] != round_no:
        return f"for round {value['round']}, not {round_no}"
    return value


def named_node(msg: Signed) -> bytes:
    """The node id a message names (unproven; empty when it names none)."""
    try:
        nid = decode(msg.body).get("node", b"")
    except (EncodingError, AttributeError):
        nid = b""
    return nid if isinstance(nid, bytes) else b""
