"""Property tests: every proof we make verifies, and every single-bit change to it fails.

A bare RFC 9162 proof binds the tree size to the root only through the tree head that signs
them together, so size changes are checked in two ways: against the raw verifier (a changed
size may only verify against a root that is not that size's real root) and against a certified
tree head (where it always fails).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prosima.ledger.errors import ProofError
from prosima.ledger.log.block import BlockHeader
from prosima.ledger.log.crypto import NodeKey
from prosima.ledger.log.merkle import MerkleTree, verify_consistency, verify_inclusion
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.registry import Registry
from prosima.ledger.log.tree_head import SignedTreeHead

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY = NodeKey.from_seed(bytes(range(32)))
REGISTRY = Registry([KEY.public_key])


def _tree(n: int, salt: int) -> MerkleTree:
    # distinct leaves: with two equal leaves a proof for one is, rightly, a proof for the other
    return MerkleTree.from_leaves(f"{salt}:{i}".encode() for i in range(n))


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@st.composite
def inclusion_case(draw):
    n = draw(st.integers(1, 300))
    return n, draw(st.integers(0, n - 1)), draw(st.integers(0, 2**16))


@st.composite
def consistency_case(draw):
    n = draw(st.integers(1, 300))
    return draw(st.integers(0, n)), n, draw(st.integers(0, 2**16))


@SETTINGS
@given(inclusion_case(), st.data())
def test_inclusion_proofs_verify_and_every_bit_flip_fails(case, data):
    n, index, salt = case
    tree = _tree(n, salt)
    root, lh, proof = tree.root(), tree.leaf(index), tree.inclusion_proof(index)
    assert verify_inclusion(lh, index, n, proof, root)
    assert len(proof) <= max(0, (n - 1).bit_length())
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = list(proof)
        bad[k] = _flip(bad[k], bit)
        assert not verify_inclusion(lh, index, n, bad, root)
    bit = data.draw(st.integers(0, 255))
    assert not verify_inclusion(lh, index, n, proof, _flip(root, bit))
    assert not verify_inclusion(_flip(lh, bit), index, n, proof, root)
    ibit = data.draw(st.integers(0, 63))
    assert not verify_inclusion(lh, index ^ (1 << ibit), n, proof, root)
    other = n ^ (1 << data.draw(st.integers(0, 63)))
    if verify_inclusion(lh, index, other, proof, root):
        assert other > tree.size or tree.root(other) != root
    assert not verify_inclusion(lh, index, n, proof[:-1], root) or not proof
    assert not verify_inclusion(lh, index, n, [*proof, root], root)


@SETTINGS
@given(consistency_case(), st.data())
def test_consistency_proofs_verify_and_every_bit_flip_fails(case, data):
    old, new, salt = case
    tree = _tree(new, salt)
    old_root, new_root, proof = tree.root(old), tree.root(), tree.consistency_proof(old)
    assert verify_consistency(old, new, old_root, new_root, proof)
    bit = data.draw(st.integers(0, 255))
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[k] = _flip(bad[k], bit)
        assert not verify_consistency(old, new, old_root, new_root, bad)
        assert not verify_consistency(old, new, old_root, new_root, proof[:-1])
    assert not verify_consistency(old, new, _flip(old_root, bit), new_root, proof)
    if old:  # the empty tree is a prefix of every tree, so from size 0 any new root is consistent
        assert not verify_consistency(old, new, old_root, _flip(new_root, bit), proof)
    assert not verify_consistency(old, new, old_root, new_root, [*proof, new_root])
    for changed_old, changed_new in (
        (old ^ (1 << data.draw(st.integers(0, 63))), new),
        (old, new ^ (1 << data.draw(st.integers(0, 63)))),
    ):
        if verify_consistency(changed_old, changed_new, old_root, new_root, proof):
            # only possible when the changed size is not the size those roots belong to
            real_old = changed_old <= tree.size and tree.root(changed_old) == old_root
            real_new = changed_new <= tree.size and tree.root(changed_new) == new_root
            assert not (real_old and real_new) or (changed_old, changed_new) == (old, new)


@SETTINGS
@given(inclusion_case(), st.integers(0, 62))  # a header's sizes are below 2**63
def test_signed_tree_head_binds_the_size(case, bit):
    n, _index, salt = case
    tree = _tree(n, salt)
    header = BlockHeader(0, bytes(32), bytes(32), 0, n, tree.root(), 12345, KEY.node_id)
    head = SignedTreeHead.of_block(header.encode(), QuorumCertificate.sign(header.encode(), [KEY]))
    assert head.check(REGISTRY) is None
    assert SignedTreeHead.from_json(head.to_json()) == head
    view = head.to_json() | {"tree_size": n ^ (1 << bit)}
    with pytest.raises(ProofError, match="differ from its certified header"):
        SignedTreeHead.from_json(view)
    for changed in (
        replace(header, log_size=n ^ (1 << bit)),
        replace(header, log_root=_flip(tree.root(), bit)),
    ):
        forged = SignedTreeHead.of_block(changed.encode(), head.certificate)
        assert forged.check(REGISTRY) is not None
