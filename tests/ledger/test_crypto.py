"""Identities, key files, hash domains and signature contexts."""

from __future__ import annotations

import os
import stat

import pytest

from prosima.ledger.errors import NodeKeyFileError
from prosima.ledger.log.crypto import (
    BLOCK_DOMAIN,
    HASH_DOMAINS,
    SIGN_BLOCK,
    SIGN_CHECKPOINT,
    SIGN_TREE_HEAD,
    SIGN_TX,
    NodeKey,
    block_hash,
    node_id_of,
    tx_hash,
    verify_signature,
)
from prosima.ledger.log.merkle import leaf_hash
from prosima.ledger.log.registry import Registry, quorum_threshold


def test_key_file_is_0600_and_round_trips(tmp_path):
    key = NodeKey.generate()
    path = tmp_path / "n.key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = NodeKey.load(path)
    assert loaded.public_key == key.public_key and loaded.node_id == key.node_id
    with pytest.raises(NodeKeyFileError, match="already exists"):
        key.save(path)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o004])
def test_key_file_readable_by_others_is_refused(tmp_path, mode):
    path = tmp_path / "n.key"
    NodeKey.generate().save(path)
    os.chmod(path, mode)
    with pytest.raises(NodeKeyFileError, match="chmod 600"):
        NodeKey.load(path)


def test_garbage_key_files_are_refused(tmp_path):
    path = tmp_path / "bad.key"
    path.write_bytes(b"not a key")
    os.chmod(path, 0o600)
    with pytest.raises(NodeKeyFileError, match="not a PEM"):
        NodeKey.load(path)
    with pytest.raises(NodeKeyFileError, match="does not exist"):
        NodeKey.load(tmp_path / "missing.key")


def test_hash_domains_are_prefix_free_and_separate():
    for x in HASH_DOMAINS:
        for y in HASH_DOMAINS:
            if x is not y:
                assert not y.startswith(x)
    data = b"same bytes"
    assert len({leaf_hash(data), tx_hash(data), block_hash(data)}) == 3
    assert block_hash(data) != tx_hash(BLOCK_DOMAIN[1:] + data)


def test_signature_contexts_do_not_cross():
    key = NodeKey.generate()
    sig = key.sign(SIGN_TX, b"message")
    assert verify_signature(key.public_key, SIGN_TX, b"message", sig)
    for other in (SIGN_BLOCK, SIGN_TREE_HEAD, SIGN_CHECKPOINT):
        assert not verify_signature(key.public_key, other, b"message", sig)
    assert not verify_signature(key.public_key, SIGN_TX, b"messagE", sig)
    assert not verify_signature(key.public_key, SIGN_TX, b"message", sig[:63])
    assert not verify_signature(key.public_key[:31], SIGN_TX, b"message", sig)
    assert not verify_signature(b"\xff" * 32, SIGN_TX, b"message", sig)
    assert not verify_signature(None, SIGN_TX, b"message", sig)


def test_node_id_is_derived_from_the_key():
    key = NodeKey.generate()
    assert key.node_id == node_id_of(key.public_key) and len(key.node_id) == 16
    with pytest.raises(ValueError):
        node_id_of(b"short")


@pytest.mark.parametrize(("n", "threshold"), [(1, 1), (2, 2), (3, 2), (4, 3), (7, 5), (10, 7), (20, 14)])
def test_quorum_threshold(n, threshold):
    assert quorum_threshold(n) == threshold


def test_quorums_always_share_an_honest_node_and_honest_nodes_suffice():
    for n in range(1, 200):
        f, q = (n - 1) // 3, quorum_threshold(n)
        assert 3 * f < n
        assert 2 * q - n >= f + 1  # safety: two quorums overlap in more than f nodes
        assert q <= n - f  # liveness: the honest nodes alone reach the quorum


def test_registry_round_trip_and_refusals(tmp_path, keys):
    reg = Registry(k.public_key for k in keys)
    assert len(reg) == 4 and reg.threshold == 3
    path = tmp_path / "registry.cbor"
    reg.save(path)
    again = Registry.load(path)
    assert again.members == reg.members and again.digest == reg.digest
    with pytest.raises(ValueError, match="twice"):
        Registry([keys[0].public_key, keys[0].public_key])
    with pytest.raises(ValueError):
        Registry([])
    sig = keys[1].sign(SIGN_BLOCK, b"h")
    assert reg.verify(keys[1].node_id, SIGN_BLOCK, b"h", sig)
    assert not reg.verify(keys[2].node_id, SIGN_BLOCK, b"h", sig)
    assert not reg.verify(NodeKey.generate().node_id, SIGN_BLOCK, b"h", sig)


def test_registry_remembers_only_verifications_that_passed(keys):
    reg = Registry(k.public_key for k in keys)
    a, b = keys[0], keys[1]
    sig = a.sign(SIGN_BLOCK, b"header")
    assert reg.verify(a.node_id, SIGN_BLOCK, b"header", sig)
    assert reg.verify(a.node_id, SIGN_BLOCK, b"header", sig)  # a repeat: answered from memory
    # a hit needs every byte to repeat: signer, context, message and signature
    assert not reg.verify(b.node_id, SIGN_BLOCK, b"header", sig)
    assert not reg.verify(a.node_id, SIGN_TX, b"header", sig)
    assert not reg.verify(a.node_id, SIGN_BLOCK, b"headeR", sig)
    assert not reg.verify(a.node_id, SIGN_BLOCK, b"header", bytes([sig[0] ^ 1]) + sig[1:])
    bad = bytes(64)
    assert not reg.verify(a.node_id, SIGN_BLOCK, b"other", bad)
    assert not reg.verify(a.node_id, SIGN_BLOCK, b"other", bad)  # a failure is never remembered as a pass
