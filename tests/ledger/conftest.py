"""Fixtures for the ledger tests: fixed node keys, registries and small ledgers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from prosima.ledger.log.block import Block, tx_leaf_hashes
from prosima.ledger.log.crypto import NodeKey
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.merkle import MerkleTree
from prosima.ledger.log.registry import Registry
from prosima.ledger.log.transaction import Transaction


def make_keys(n: int, tag: str = "node") -> list[NodeKey]:
    """Deterministic keys, sorted by node id."""
    keys = [NodeKey.from_seed(hashlib.sha256(f"{tag}-{i}".encode()).digest()) for i in range(n)]
    return sorted(keys, key=lambda k: k.node_id)


@pytest.fixture(scope="session")
def keys() -> list[NodeKey]:
    return make_keys(4)


@pytest.fixture(scope="session")
def rogue_keys() -> list[NodeKey]:
    """Keys that no registry in these tests lists."""
    return make_keys(4, "rogue")


@pytest.fixture(scope="session")
def registry(keys) -> Registry:
    return Registry(k.public_key for k in keys)


class ChainBuilder:
    """Builds a valid chain of blocks in memory (for verify_chain tests)."""

    def __init__(self, keys: list[NodeKey]) -> None:
        self.keys = keys
        self.blocks: list[Block] = []
        self.log = MerkleTree()
        self.time = 1_700_000_000_000_000

    def next(
        self,
        n_txs: int = 3,
        *,
        signers=None,
        tx_signer=None,
        time=None,
        txs=None,
        prev_hash=None,
        height=None,
    ) -> Block:
        self.time += 1_000
        tx_signer = tx_signer or self.keys[0]
        if txs is None:
            txs = [
                Transaction.create(tx_signer, "data", f"b{len(self.blocks)}-t{i}".encode(), b"k", self.time)
                for i in range(n_txs)
            ]
        block = Block.build(
            height=len(self.blocks) if height is None else height,
            prev_hash=(self.blocks[-1].hash if self.blocks else bytes(32))
            if prev_hash is None
            else prev_hash,
            txs=txs,
            log=self.log,
            time=self.time if time is None else time,
            proposer=self.keys[0].node_id,
            signers=self.keys if signers is None else signers,
        )
        return block

    def push(self, block: Block) -> Block:
        self.blocks.append(block)
        self.log.extend(tx_leaf_hashes([t.encode() for t in block.txs]))
        return block

    def add(self, n_txs: int = 3, **kw) -> Block:
        return self.push(self.next(n_txs, **kw))


@pytest.fixture
def chain(keys) -> ChainBuilder:
    return ChainBuilder(keys)


@pytest.fixture
def ledger_path(tmp_path) -> Path:
    """A ledger directory with 6 blocks of 1..6 transactions, closed (so a checkpoint exists)."""
    path = tmp_path / "ledger"
    with Ledger.init(path, nodes=4) as ledger:
        for b in range(6):
            ledger.append(
                [Entry(f"payload {b}.{i}".encode(), "image.anchored", bytes([b, i])) for i in range(b + 1)]
            )
    return path
