"""Transactions, blocks and verify_chain: every fault kind is found at the right height."""

from __future__ import annotations

import dataclasses

import pytest

from prosima.ledger.log.block import GENESIS_PREV, Block, BlockHeader, RawBlock
from prosima.ledger.log.crypto import SIGN_TX, verify_signature
from prosima.ledger.log.fault import FaultKind
from prosima.ledger.log.merkle import root_hash
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.transaction import Transaction, TxKind
from prosima.ledger.log.verify import verify_chain


def test_transaction_round_trip_and_signature(keys):
    tx = Transaction.create(keys[0], TxKind.IMAGE_ANCHORED, b"\x00payload", b"fingerprint-root", 42)
    again = Transaction.decode(tx.encode())
    assert again == tx and again.tx_id == tx.tx_id and len(tx.tx_id) == 32
    assert verify_signature(keys[0].public_key, SIGN_TX, tx.signing_bytes(), tx.signature)
    assert (
        Transaction.create(keys[0], "data", b"x", time=1).tx_id
        != Transaction.create(keys[0], "data", b"x", time=2).tx_id
    )
    assert tx.to_json()["kind"] == "image.anchored"


def test_block_build_header_and_certificate(chain, registry):
    block = chain.add(5)
    h = block.header
    assert (h.height, h.prev_hash, h.tx_count, h.log_size) == (0, GENESIS_PREV, 5, 5)
    assert h.tx_root == root_hash([t.encode() for t in block.txs]) == h.log_root
    assert BlockHeader.decode(h.encode()) == h
    assert block.qc.check(h.encode(), registry) is None
    second = chain.add(2)
    assert second.header.prev_hash == block.hash and second.header.log_size == 7
    assert verify_chain([b.raw() for b in chain.blocks], registry).ok


def _fault(blocks, registry):
    report = verify_chain([b if isinstance(b, RawBlock) else b.raw() for b in blocks], registry)
    assert not report.ok
    return report.fault


def test_empty_chain_and_empty_blocks_verify(chain, registry):
    assert verify_chain([], registry).ok
    chain.add(0)
    chain.add(1)
    report = verify_chain([b.raw() for b in chain.blocks], registry)
    assert report.ok and report.blocks == 2 and report.transactions == 1


def test_hash_link(chain, registry):
    chain.add()
    chain.add(prev_hash=b"\x07" * 32)
    fault = _fault(chain.blocks, registry)
    assert (fault.height, fault.kind) == (1, FaultKind.HASH_LINK)


def test_out_of_order_time(chain, registry):
    chain.add()
    chain.add(time=chain.blocks[0].header.time - 1)
    fault = _fault(chain.blocks, registry)
    assert (fault.height, fault.kind) == (1, FaultKind.TIME)


def test_merkle_root(chain, registry, keys):
    chain.add()
    good = chain.next(3)
    header = dataclasses.replace(good.header, tx_root=b"\x01" * 32)
    chain.push(Block(header, good.txs, QuorumCertificate.sign(header.encode(), keys)))
    fault = _fault(chain.blocks, registry)
    assert (fault.height, fault.kind) == (1, FaultKind.MERKLE_ROOT)


def test_log_root(chain, registry, keys):
    good = chain.next(3)
    header = dataclasses.replace(good.header, log_root=b"\x01" * 32)
    chain.push(Block(header, good.txs, QuorumCertificate.sign(header.encode(), keys)))
    assert _fault(chain.blocks, registry).kind == FaultKind.LOG_ROOT


def test_quorum_below_threshold(chain, registry, keys):
    chain.add(signers=keys[:2])
    fault = _fault(chain.blocks, registry)
    assert fault.kind == FaultKind.QUORUM and "2 distinct signers" in fault.detail


def test_unknown_quorum_signer(chain, registry, keys, rogue_keys):
    rogue = rogue_keys[:3]
    chain.add(signers=[*keys[:2], rogue[0]])
    assert _fault(chain.blocks, registry).kind == FaultKind.UNKNOWN_SIGNER


def test_unknown_transaction_signer(chain, registry, rogue_keys):
    chain.add(tx_signer=rogue_keys[0])
    fault = _fault(chain.blocks, registry)
    assert fault.kind == FaultKind.UNKNOWN_SIGNER and "transaction 0" in fault.detail


def test_bad_quorum_signature(chain, registry):
    block = chain.add()
    sigs = list(block.qc.signatures)
    sigs[1] = (sigs[1][0], bytes(64))
    raw = dataclasses.replace(block.raw(), qc=QuorumCertificate(tuple(sigs)).encode())
    assert _fault([raw], registry).kind == FaultKind.SIGNATURE


def test_bad_transaction_signature(chain, registry, keys):
    tx = Transaction.create(keys[0], "data", b"x", time=5)
    forged = Transaction(tx.kind, b"y", tx.key, tx.time, tx.signer, tx.signature)
    chain.add(txs=[forged])
    fault = _fault(chain.blocks, registry)
    assert fault.kind == FaultKind.SIGNATURE and "transaction 0" in fault.detail


def test_replayed_block_and_replayed_transaction(chain, registry):
    first = chain.add()
    chain.add()
    fault = _fault([*chain.blocks, first], registry)
    assert (fault.height, fault.kind) == (2, FaultKind.MISSING_BLOCK) or fault.kind == FaultKind.HEIGHT
    replay_at_2 = dataclasses.replace(first.raw(), position=2)
    fault = _fault([*chain.blocks, replay_at_2], registry)
    assert fault.height == 2 and fault.kind in (FaultKind.HEIGHT, FaultKind.HASH_LINK)
    chain.add(txs=list(first.txs))  # a properly signed block that repeats old transactions
    fault = _fault(chain.blocks, registry)
    assert (fault.height, fault.kind) == (2, FaultKind.DUPLICATE_TX)


def test_missing_and_swapped_blocks(chain, registry):
    for _ in range(4):
        chain.add()
    raws = [b.raw() for b in chain.blocks]
    fault = _fault([raws[0], raws[1], raws[3]], registry)
    assert (fault.height, fault.kind) == (2, FaultKind.MISSING_BLOCK)
    swapped = [raws[0], dataclasses.replace(raws[2], position=1), dataclasses.replace(raws[1], position=2)]
    fault = _fault(swapped, registry)
    assert (fault.height, fault.kind) == (1, FaultKind.HEIGHT)


def test_garbled_encoding(chain, registry):
    block = chain.add()
    raw = block.raw()
    assert _fault([dataclasses.replace(raw, header=raw.header[:-1])], registry).kind == FaultKind.ENCODING
    assert _fault([dataclasses.replace(raw, qc=b"\xff")], registry).kind == FaultKind.ENCODING
    txs = (raw.txs[0] + b"\x00", *raw.txs[1:])
    fault = _fault([dataclasses.replace(raw, txs=txs)], registry)
    assert fault.kind == FaultKind.ENCODING and "transaction 0" in fault.detail


def test_fault_is_reported_at_first_bad_height_and_state_is_clean(chain, registry):
    for _ in range(3):
        chain.add()
    raws = [b.raw() for b in chain.blocks]
    bad = dataclasses.replace(raws[2], qc=QuorumCertificate(()).encode())
    report = verify_chain([raws[0], raws[1], bad], registry)
    assert report.height == 1 and report.blocks == 2 and report.fault.height == 2
    assert str(report.fault).startswith("height 2: quorum below threshold")
    with pytest.raises(AttributeError):
        report.fault.height = 3  # frozen
