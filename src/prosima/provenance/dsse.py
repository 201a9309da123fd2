"""DSSE envelopes (Dead Simple Signing Envelope, protocol v1: github.com/secure-systems-lab/dsse)
signed with a ledger node's Ed25519 key, the way in-toto attestations travel.

The signature is over ``PAE(payloadType, payload)`` exactly (no context label in front), so any DSSE
verifier holding the node's public key checks it; ``keyid`` is the node id in hex, so a verifier
holding the ledger's registry finds the key. Payload and signatures are standard base64.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from prosima.errors import InputError
from prosima.ledger.log.crypto import NodeKey, node_id_of, verify_signature
from prosima.ledger.log.registry import Registry

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class EnvelopeError(InputError, ValueError):
    """An envelope that is malformed, of another payload type, or signed by no key given."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's Pre-Authentication Encoding: ``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign_envelope(payload: bytes, key: NodeKey, payload_type: str = INTOTO_PAYLOAD_TYPE) -> dict[str, Any]:
    """A DSSE envelope of ``payload`` signed by ``key`` (keyid: its node id in hex)."""
    signature = key.sign(b"", pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": key.node_id.hex(), "sig": base64.b64encode(signature).decode("ascii")}],
    }


def sign_statement(statement: dict[str, Any], key: NodeKey) -> dict[str, Any]:
    """An in-toto Statement (compact, key-sorted JSON) in a DSSE envelope signed by ``key``."""
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return sign_envelope(payload, key)


def _b64(text: Any, what: str) -> bytes:
    """Standard or URL-safe base64, padded or not (DSSE verifiers accept both)."""
    if not isinstance(text, str):
        raise EnvelopeError(f"envelope {what} is not a base64 string")
    try:
        return base64.b64decode(
            text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"envelope {what} is not valid base64") from None


def _public_key(keys: Registry | Mapping[str, bytes], keyid: str) -> bytes | None:
    if isinstance(keys, Registry):
        try:
            return keys.public_key(bytes.fromhex(keyid))
        except ValueError:
            return None
    pk = keys.get(keyid)
    return pk if pk is not None and node_id_of(pk).hex() == keyid else None


def verify_envelope(
    envelope: Mapping[str, Any] | str | bytes,
    keys: Registry | Mapping[str, bytes],
    payload_type: str = INTOTO_PAYLOAD_TYPE,
) -> tuple[bytes, list[str]]:
    """The payload of ``envelope`` and the key ids whose signatures verify, given the signers' public
    keys (a ledger registry, or node id hex -> raw Ed25519 public key). Raises :class:`EnvelopeError`
    unless at least one signature of a given key verifies over the envelope's PAE."""
    if isinstance(envelope, str | bytes):
        try:
            envelope = json.loads(envelope)
        except (ValueError, UnicodeDecodeError):
            raise EnvelopeError("envelope is not JSON") from None
    if not isinstance(envelope, Mapping):
        raise EnvelopeError("envelope is not a JSON object")
    kind = envelope.get("payloadType")
    if kind != payload_type:
        raise EnvelopeError(f"envelope payloadType is {kind!r}, not {payload_type!r}")
    payload = _b64(envelope.get("payload"), "payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise EnvelopeError("envelope has no signatures")
    message = pae(kind, payload)
    good = []
    for item in signatures:
        if not isinstance(item, Mapping) or not isinstance(item.get("keyid"), str):
            raise EnvelopeError("an envelope signature needs a keyid and a sig")
        pk = _public_key(keys, item["keyid"])
        if pk is not None and verify_signature(pk, b"", message, _b64(item.get("sig"), "sig")):
            good.append(item["keyid"])
    if not good:
        ids = ", ".join(str(s.get("keyid")) for s in signatures)
        raise EnvelopeError(f"no signature verifies with the keys given (signed by: {ids})")
    return payload, good


def verify_statement(
    envelope: Mapping[str, Any] | str | bytes, keys: Registry | Mapping[str, bytes]
) -> dict[str, Any]:
    """The in-toto Statement in a verified DSSE envelope (see :func:`verify_envelope`)."""
    payload, _ = verify_envelope(envelope, keys)
    try:
        statement = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise EnvelopeError("envelope payload is not JSON") from None
    if not isinstance(statement, dict) or statement.get("_type") != "https://in-toto.io/Statement/v1":
        raise EnvelopeError("envelope payload is not an in-toto Statement v1")
    return statement
