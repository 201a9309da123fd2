"""RFC 9162 Merkle trees: hand-worked examples, published vectors, boundaries, and a cross-check
against an independent implementation."""

from __future__ import annotations

import hashlib
import random

import pytest

from prosima.ledger.log.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

H = hashlib.sha256
D = [f"d{i}".encode() for i in range(8)]
L = [H(b"\x00" + d).digest() for d in D]


def N(a: bytes, b: bytes) -> bytes:
    return H(b"\x01" + a + b).digest()


# The tree over d0..d6 drawn in RFC 9162 section 2.1.5, with the RFC's node names.
a, b, c, d, e, f, j = L[0], L[1], L[2], L[3], L[4], L[5], L[6]
g, h, i = N(a, b), N(c, d), N(e, f)
k, l = N(g, h), N(i, j)  # noqa: E741 - node names as in the RFC's figure
ROOT7 = N(k, l)

HAND_ROOTS = {
    0: H(b"").digest(),
    1: L[0],
    2: N(L[0], L[1]),
    3: N(N(L[0], L[1]), L[2]),
    4: N(N(L[0], L[1]), N(L[2], L[3])),
    5: N(N(N(L[0], L[1]), N(L[2], L[3])), L[4]),
    6: N(N(N(L[0], L[1]), N(L[2], L[3])), N(L[4], L[5])),
    7: ROOT7,
    8: N(N(N(L[0], L[1]), N(L[2], L[3])), N(N(L[4], L[5]), N(L[6], L[7]))),
}


@pytest.mark.parametrize("n", range(9))
def test_root_hash_matches_hand_worked_trees(n):
    assert root_hash(D[:n]) == HAND_ROOTS[n]


def test_leaf_and_node_hash_are_rfc_9162():
    assert leaf_hash(b"") == H(b"\x00").digest()
    assert node_hash(L[0], L[1]) == H(b"\x01" + L[0] + L[1]).digest()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_rfc_9162_section_2_1_5_inclusion_examples():
    assert inclusion_proof(D[:7], 0) == [b, h, l]
    assert inclusion_proof(D[:7], 3) == [c, g, l]
    assert inclusion_proof(D[:7], 4) == [f, j, k]
    assert inclusion_proof(D[:7], 6) == [i, k]
    for index, proof in ((0, [b, h, l]), (3, [c, g, l]), (4, [f, j, k]), (6, [i, k])):
        assert verify_inclusion(L[index], index, 7, proof, ROOT7)


def test_rfc_9162_section_2_1_5_consistency_examples():
    hash0, hash1, hash2 = N(g, c), k, N(k, i)
    assert consistency_proof(D[:7], 3) == [c, d, g, l]
    assert consistency_proof(D[:7], 4) == [l]
    assert consistency_proof(D[:7], 6) == [i, j, k]
    assert verify_consistency(3, 7, hash0, ROOT7, [c, d, g, l])
    assert verify_consistency(4, 7, hash1, ROOT7, [l])
    assert verify_consistency(6, 7, hash2, ROOT7, [i, j, k])


# Published Certificate Transparency test vectors (the leaves and roots used by RFC 6962 test suites).
CT_LEAVES = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


@pytest.mark.parametrize("n", range(1, 9))
def test_published_ct_vectors(n):
    assert root_hash(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]


def _mth(data):
    """Straight transcription of the RFC's recursive MTH, PATH and SUBPROOF definitions."""
    n = len(data)
    if n == 0:
        return H(b"").digest()
    if n == 1:
        return leaf_hash(data[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(_mth(data[:k]), _mth(data[k:]))


def _path(m, data):
    n = len(data)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    return [*_path(m, data[:k]), _mth(data[k:])] if m < k else [*_path(m - k, data[k:]), _mth(data[:k])]


def _subproof(m, data, whole):
    n = len(data)
    if m == n:
        return [] if whole else [_mth(data)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*_subproof(m, data[:k], whole), _mth(data[k:])]
    return [*_subproof(m - k, data[k:], False), _mth(data[:k])]


def test_every_size_up_to_40_against_the_recursive_definitions():
    for n in range(41):
        data = [bytes([x]) * x for x in range(n)]
        tree = MerkleTree.from_leaves(data)
        for s in range(n + 1):
            assert tree.root(s) == _mth(data[:s])
        for m in range(n):
            assert tree.inclusion_proof(m) == _path(m, data)
        for m in range(1, n):
            assert tree.consistency_proof(m) == _subproof(m, data, True)
        assert tree.consistency_proof(0) == [] and tree.consistency_proof(n) == []


def test_cross_check_with_pymerkle_on_random_sizes():
    pymerkle = pytest.importorskip("pymerkle")
    rng = random.Random(7)
    for n in [1, 2, 3, 5, 8, 13, 64, 100, 257, *(rng.randrange(2, 1500) for _ in range(6))]:
        data = [rng.randbytes(rng.randrange(0, 40)) for _ in range(n)]
        other = pymerkle.InmemoryTree(algorithm="sha256")
        for x in data:
            other.append_entry(x)
        tree = MerkleTree.from_leaves(data)
        for s in {1, n // 2 or 1, n, rng.randrange(1, n + 1)}:
            assert tree.root(s) == other.get_root(s)
        for _ in range(5):
            size = rng.randrange(1, n + 1)
            index = rng.randrange(size)
            ours = tree.inclusion_proof(index, size)
            theirs = other.prove_inclusion(index + 1, size)  # pymerkle counts leaves from 1
            pymerkle.verify_inclusion(other.get_leaf(index + 1), other.get_root(size), theirs)
            # pymerkle's path starts with the leaf itself and then lists our audit path, leaf to root
            assert [bytes.fromhex(x) for x in theirs.serialize()["path"][1:]] == ours
            assert verify_inclusion(other.get_leaf(index + 1), index, size, ours, other.get_root(size))
            old = rng.randrange(1, size + 1)
            proof = tree.consistency_proof(old, size)
            assert verify_consistency(old, size, other.get_root(old), other.get_root(size), proof)
            theirs_c = other.prove_consistency(old, size)
            pymerkle.verify_consistency(other.get_root(old), other.get_root(size), theirs_c)


def test_empty_and_equal_size_consistency():
    r3 = root_hash(D[:3])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 3, EMPTY_ROOT, r3, [])
    assert not verify_consistency(0, 3, r3, r3, [])  # size 0 must have the empty root
    assert not verify_consistency(0, 3, EMPTY_ROOT, r3, [r3])
    assert verify_consistency(3, 3, r3, r3, [])
    assert not verify_consistency(3, 3, r3, r3, [r3])
    assert not verify_consistency(3, 3, r3, EMPTY_ROOT, [])
    assert not verify_consistency(4, 3, r3, r3, [])
    assert not verify_consistency(2, 3, root_hash(D[:2]), r3, [])


def test_malformed_inputs_are_refused_without_exceptions():
    tree = MerkleTree.from_leaves(D)
    root, proof, lh = tree.root(), tree.inclusion_proof(5), L[5]
    assert verify_inclusion(lh, 5, 8, proof, root)
    bad_calls = [
        (lh[:31], 5, 8, proof, root),
        (lh + b"\x00", 5, 8, proof, root),
        (lh, 5, 8, proof, root[:31]),
        (lh, 5, 8, proof, root + b"\x00"),
        (lh, 5, 8, [*proof[:-1], proof[-1][:31]], root),
        (lh, 5, 8, [*proof[:-1], proof[-1] + b"\x00"], root),
        (lh, 8, 8, proof, root),
        (lh, 9, 8, proof, root),
        (lh, -1, 8, proof, root),
        (lh, 5, 0, proof, root),
        (lh, 5, -8, proof, root),
        (lh, 5, 8, proof[:-1], root),
        (lh, 5, 8, [*proof, proof[0]], root),
        (lh, 5, 8, [], root),
        (lh, True, 8, proof, root),
        (lh, 5.0, 8, proof, root),
        (lh, "5", 8, proof, root),
        (lh.hex(), 5, 8, proof, root),
        (lh, 5, 8, b"".join(proof), root),
        (lh, 5, 8, None, root),
        (None, None, None, None, None),
    ]
    for args in bad_calls:
        assert verify_inclusion(*args) is False, args
    cp = tree.consistency_proof(3)
    r3 = tree.root(3)
    assert verify_consistency(3, 8, r3, root, cp)
    bad_consistency = [
        (3, 8, r3[:31], root, cp),
        (3, 8, r3, root + b"\x00", cp),
        (3, 8, r3, root, cp[:-1]),
        (3, 8, r3, root, [*cp, cp[0]]),
        (3, 8, r3, root, [cp[0][:31], *cp[1:]]),
        (3, 8, r3, root, []),
        (8, 3, root, r3, cp),
        (-3, 8, r3, root, cp),
        (3, 8.0, r3, root, cp),
        (3, 8, r3, root, "ab"),
        (None, None, None, None, None),
    ]
    for args in bad_consistency:
        assert verify_consistency(*args) is False, args


def test_tree_api_errors_and_truncate():
    tree = MerkleTree.from_leaves(D)
    with pytest.raises(ValueError):
        tree.inclusion_proof(8)
    with pytest.raises(ValueError):
        tree.root(9)
    with pytest.raises(ValueError):
        tree.consistency_proof(5, 4)
    with pytest.raises(ValueError):
        tree.append(b"short")
    tree.truncate(5)
    assert tree.size == 5 and tree.root() == HAND_ROOTS[5]
    tree.extend(L[5:])
    assert tree.root() == HAND_ROOTS[8]


def test_append_one_by_one_equals_bulk():
    rng = random.Random(3)
    data = [rng.randbytes(8) for _ in range(1000)]
    one = MerkleTree()
    for x in data:
        one.append(leaf_hash(x))
    bulk = MerkleTree()
    bulk.extend(leaf_hash(x) for x in data[:333])
    bulk.extend(leaf_hash(x) for x in data[333:])
    assert one.root() == bulk.root() == root_hash(data)
    assert all(one.root(s) == bulk.root(s) for s in range(0, 1001, 37))


@pytest.mark.slow
def test_large_tree_is_not_quadratic():
    import time

    timings = []
    for n in (1 << 14, 1 << 17):
        data = [x.to_bytes(4, "big") for x in range(n)]
        t0 = time.perf_counter()
        tree = MerkleTree.from_leaves(data)
        tree.inclusion_proof(n // 3)
        tree.consistency_proof(n // 5)
        timings.append(time.perf_counter() - t0)
    assert timings[1] < 8 * 4 * timings[0] + 0.5  # 8x the leaves: linear would be ~8x
