"""The round's hashes: weights' content address, commitments, seeds and salts, each under its own
domain label."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from prosima.ledger.log.crypto import NodeKey
from prosima.ledger.log.encoding import encode

SIGN_SALT = b"PROSIMA/sign/pouw-salt/v1\x00"
_COMMIT_DOMAIN = b"PROSIMA/pouw/commitment/v1\x00"
_VALIDATION_DOMAIN = b"PROSIMA/pouw/validation-seed/v1\x00"
_TRAIN_DOMAIN = b"PROSIMA/pouw/train-seed/v1\x00"
_PERTURB_DOMAIN = b"PROSIMA/pouw/perturb-seed/v1\x00"


def weights_hash(weights: bytes) -> bytes:
    """SHA-256 of the weight bytes (their content address)."""
    return hashlib.sha256(weights).digest()


def _h(domain: bytes, *parts: Any) -> bytes:
    return hashlib.sha256(domain + encode(list(parts))).digest()


def commitment(round_no: int, node_id: bytes, weights_digest: bytes, salt: bytes) -> bytes:
    """The hiding, binding commitment to a node's weights in round ``round_no``."""
    return _h(_COMMIT_DOMAIN, round_no, node_id, weights_digest, salt)


def validation_seed(round_no: int, prev: bytes, commitments: Sequence[bytes]) -> bytes:
    """The round's validation seed: a hash of the round, the chain model and every on-time
    commitment (one per node, sorted)."""
    return _h(_VALIDATION_DOMAIN, round_no, prev, sorted(commitments))


def train_seed(seed: int, round_no: int, node: int) -> bytes:
    """Node ``node``'s training seed in round ``round_no`` of the chain seeded with ``seed``."""
    return _h(_TRAIN_DOMAIN, seed, round_no, node)


def perturb_seed(seed: int, round_no: int, node: int, *purpose: str) -> bytes:
    """The seed a simulated cheat ``node`` nudges weights with (``purpose`` tells its uses apart)."""
    return _h(_PERTURB_DOMAIN, seed, round_no, node, *purpose)


def salt_for(key: NodeKey, round_no: int, prev: bytes) -> bytes:
    """The node's commitment salt: a hash of its (deterministic) signature of the round."""
    return hashlib.sha256(key.sign(SIGN_SALT, encode([round_no, prev]))).digest()
