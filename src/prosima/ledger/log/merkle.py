"""RFC 9162 section 2.1 Merkle trees: tree hash, inclusion and consistency proofs.

Leaf hash ``SHA-256(0x00 || data)``, interior ``SHA-256(0x01 || left || right)``, and the
empty tree hashes to ``SHA-256("")``. ``MerkleTree`` keeps every complete perfect subtree, so
appending is amortised O(1) and the root or a proof for any size up to the current one costs
O(log n). The verifiers follow sections 2.1.3.2 and 2.1.4.2 and return ``False`` (never
raise) on malformed input: wrong hash lengths, indices or sizes out of range, proofs of the
wrong length. As in the RFC, a proof binds a tree size to its root only through the signed
tree head that carries both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: ``SHA-256(0x00 || data)``."""
    return _sha256(LEAF_PREFIX + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return _sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only RFC 9162 tree over leaf hashes, answering for every size up to its own."""

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self.extend(leaf_hashes)

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> MerkleTree:
        """A tree over raw entries (each is leaf-hashed)."""
        return cls([_sha256(LEAF_PREFIX + bytes(d)).digest() for d in leaves])

    def __len__(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self)

    def append(self, leaf_hash_: bytes) -> None:
        """Append one leaf hash (32 bytes)."""
        self.extend((leaf_hash_,))

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaf hashes in order; O(k) for k new leaves."""
        hashes = list(leaf_hashes)
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError(f"every leaf hash must be {HASH_SIZE} bytes")
        levels = self._levels
        levels[0] += b"".join(hashes)
        size = len(self)
        level = 0
        while size >> (level + 1):
            if level + 1 == len(levels):
                levels.append(bytearray())
            have, want = len(levels[level + 1]) // HASH_SIZE, size >> (level + 1)
            if have == want:
                break
            with memoryview(levels[level]) as row:
                pairs = [
                    _sha256(NODE_PREFIX + row[j * 2 * HASH_SIZE : (j + 1) * 2 * HASH_SIZE]).digest()
                    for j in range(have, want)
                ]
            levels[level + 1] += b"".join(pairs)
            level += 1

    def truncate(self, size: int) -> None:
        """Drop leaves so that ``size`` remain (undo of appends)."""
        if not 0 <= size <= len(self):
            raise ValueError(f"cannot truncate a tree of {len(self)} leaves to {size}")
        for level, row in enumerate(self._levels):
            del row[(size >> level) * HASH_SIZE :]

    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        return self._perfect(0, index)

    def _perfect(self, level: int, index: int) -> bytes:
        row = self._levels[level]
        return bytes(row[index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def _range(self, lo: int, hi: int) -> bytes:
        """MTH of leaves [lo, hi); every range the RFC recursion visits is aligned."""
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0:
            level = n.bit_length() - 1
            return self._perfect(level, lo >> level)
        k = _split(n)
        return node_hash(self._range(lo, lo + k), self._range(lo + k, hi))

    def _check_size(self, size: int | None) -> int:
        size = len(self) if size is None else size
        if not 0 <= size <= len(self):
            raise ValueError(f"tree size {size} is outside 0..{len(self)}")
        return size

    def root(self, size: int | None = None) -> bytes:
        """The tree hash of the first ``size`` leaves (default: all)."""
        return self._range(0, self._check_size(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 PATH(index, D[size]): the audit path, leaf to root."""
        size = self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside a tree of size {size}")
        path: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                path.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._range(lo, lo + k))
                lo = lo + k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 PROOF(old_size, D[new_size]); empty when ``old_size`` is 0 or equals the new size."""
        new_size = self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise ValueError(f"old size {old_size} is outside 0..{new_size}")
        if old_size in (0, new_size):
            return []
        path: list[bytes] = []
        lo, hi, m, whole = 0, new_size, old_size, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                path.append(self._range(lo + k, hi))
                hi = lo + k
            else:
                path.append(self._range(lo, lo + k))
                lo, m, whole = lo + k, m - k, False
        if not whole:
            path.append(self._range(lo, hi))
        path.reverse()
        return path


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 MTH over raw entries (not hashes)."""
    return MerkleTree.from_leaves(leaves).root()


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for ``leaves[index]`` in the tree over all ``leaves``."""
    return MerkleTree.from_leaves(leaves).inclusion_proof(index)


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Consistency proof from the first ``old_size`` leaves to all ``leaves``."""
    return MerkleTree.from_leaves(leaves).consistency_proof(old_size)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_path(proof: object) -> bool:
    return isinstance(proof, Sequence) and not isinstance(proof, bytes | str) and all(map(_is_hash, proof))


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2: does ``proof`` place ``leaf_hash`` at ``index`` under ``root``?"""
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_size(index) and _is_size(tree_size)):
        return False
    if not _is_path(proof) or index >= tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2: is the tree (``new_size``, ``new_root``) an append-only extension?

    Sizes 0 and equal sizes, which the section leaves to the caller, take an empty proof: the
    empty tree must have the empty root, and equal sizes must have equal roots.
    """
    if not (_is_size(old_size) and _is_size(new_size) and _is_hash(old_root) and _is_hash(new_root)):
        return False
    if not _is_path(proof) or old_size > new_size:
        return False
    if old_size == 0:
        return len(proof) == 0 and old_root == EMPTY_ROOT
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    if len(proof) == 0:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
