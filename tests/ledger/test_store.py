"""The SQLite store: settings, indexes, reads, atomic refusals, checkpoints."""

from __future__ import annotations

import sqlite3

import pytest

from prosima.ledger.errors import LedgerError, StoreError, TamperedStoreError
from prosima.ledger.log.block import Block
from prosima.ledger.log.directory import STORE_FILE, Entry, Ledger
from prosima.ledger.log.fault import FaultKind
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.registry import Registry
from prosima.ledger.log.store import Store
from prosima.ledger.log.transaction import Transaction


def test_wal_full_sync_and_indexes(ledger_path):
    with Ledger.open(ledger_path) as ledger:
        conn = ledger.store._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"txs_by_id", "txs_by_key", "txs_by_height"} <= names
        plan = " ".join(
            str(r) for r in conn.execute("EXPLAIN QUERY PLAN SELECT seq FROM txs WHERE key = x'0102'")
        )
        assert "txs_by_key" in plan


def test_reads(ledger_path):
    with Ledger.open(ledger_path) as ledger:
        store = ledger.store
        assert store.height == 5 and store.log.size == 21
        block = store.block(3)
        assert block.header.height == 3 and len(block.txs) == 4
        tx = block.txs[2]
        found, height, index = store.find_tx(tx.tx_id)
        assert found == tx and height == 3 and index == 1 + 2 + 3 + 2
        assert [r[0] for r in store.txs_by_key(bytes([3, 2]))] == [tx.tx_id]
        assert store.txs_by_key(b"nothing") == []
        with pytest.raises(StoreError, match="no transaction"):
            store.find_tx(b"\x00" * 32)
        with pytest.raises(StoreError, match="no block at height 9"):
            store.block(9)
        stats = ledger.stats()
        assert stats["blocks"] == 6 and stats["transactions"] == 21 and stats["bytes_per_transaction"] > 0


def _unchanged(store, before):
    assert (store.height, store.log.size, store.tip_hash) == before
    assert store._conn.execute("SELECT count(*) FROM txs").fetchone()[0] == before[1]


def test_refused_blocks_leave_the_store_unchanged(ledger_path, rogue_keys):
    with Ledger.open(ledger_path) as ledger:
        store, keys = ledger.store, ledger.keys
        before = (store.height, store.log.size, store.tip_hash)

        def build(**kw):
            args = dict(
                height=store.height + 1,
                prev_hash=store.tip_hash,
                log=store.log,
                time=store.tip_time + 1,
                proposer=keys[0].node_id,
                signers=keys,
                txs=[Transaction.create(keys[0], "data", b"new", time=1)],
            )
            args.update(kw)
            return Block.build(**args)

        bad_blocks = {
            "hash link": build(prev_hash=b"\x01" * 32),
            "height": build(height=store.height + 2),
            "quorum below threshold": build(signers=keys[:2]),
            "unknown signer": build(signers=rogue_keys[:3]),
            "out-of-order time": build(time=store.tip_time - 1),
        }
        tx = Transaction.create(keys[0], "data", b"x", time=1)
        forged = Transaction(tx.kind, b"y", tx.key, tx.time, tx.signer, tx.signature)
        bad_blocks["signature"] = build(txs=[forged])
        old = store.block(2)
        bad_blocks["already in the store"] = build(txs=list(old.txs))
        for reason, block in bad_blocks.items():
            with pytest.raises(StoreError, match=reason):
                store.append(block)
            _unchanged(store, before)
        with pytest.raises(StoreError):
            store.append(old)  # replay of a whole old block
        _unchanged(store, before)
        good = build()
        store.append(good)
        assert store.height == before[0] + 1
    with Ledger.open(ledger_path, verify="full") as ledger:
        assert ledger.store.height == 6


def test_quorum_needs_enough_local_keys(tmp_path):
    path = tmp_path / "l"
    Ledger.init(path, nodes=4).close()
    for key_file in sorted((path / "keys").glob("*.key"))[:2]:
        key_file.unlink()
    with Ledger.open(path) as ledger, pytest.raises(LedgerError, match="quorum needs 3 of 4"):
        ledger.append([Entry(b"x")])


def test_a_second_writer_catches_up(ledger_path):
    a = Ledger.open(ledger_path)
    b = Ledger.open(ledger_path)
    try:
        a.append([Entry(b"from a")])
        stale = Block.build(  # built by hand on the tip b saw, which a has moved
            height=b.store.height + 1,
            prev_hash=b.store.tip_hash,
            txs=[Transaction.create(b.keys[0], "data", b"stale")],
            log=b.store.log,
            time=b.store.tip_time + 1,
            proposer=b.keys[0].node_id,
            signers=b.keys,
        )
        with pytest.raises(StoreError, match="changed by another writer"):
            b.store.append(stale)
        assert b.store.height == 5
        block = b.append([Entry(b"from b")])  # re-built on a's block, which b verified first
        assert block.header.height == 7 and b.store.height == 7
    finally:
        a.close()
        b.close()
    with Ledger.open(ledger_path, verify="full") as ledger:
        assert ledger.store.height == 7 and ledger.verify().ok
        assert ledger.store.checkpoint().height == 7


def test_checkpoint_makes_open_incremental(ledger_path):
    ledger = Ledger.open(ledger_path)
    cp = ledger.store.checkpoint()
    assert cp is not None and cp.height == 5 and cp.verify(ledger.registry)
    ledger.append([Entry(b"after checkpoint")])
    ledger.store.close()  # as if the process died before writing its next checkpoint
    # a bad signature above the checkpoint is named precisely on an incremental open
    conn = sqlite3.connect(ledger_path / STORE_FILE)
    qc = QuorumCertificate.decode(conn.execute("SELECT qc FROM blocks WHERE height = 6").fetchone()[0])
    sigs = list(qc.signatures)
    sigs[0] = (sigs[0][0], bytes(64))
    with conn:
        conn.execute("UPDATE blocks SET qc = ? WHERE height = 6", (QuorumCertificate(tuple(sigs)).encode(),))
    conn.close()
    with pytest.raises(TamperedStoreError) as err:
        Ledger.open(ledger_path)
    assert err.value.fault.kind == FaultKind.SIGNATURE and err.value.fault.height == 6


def test_create_and_open_refusals(tmp_path, registry, rogue_keys):
    with pytest.raises(StoreError, match="does not exist"):
        Store.open(tmp_path / "none.db", registry)
    Store.create(tmp_path / "s.db", registry).close()
    with pytest.raises(StoreError, match="already exists"):
        Store.create(tmp_path / "s.db", registry)
    (tmp_path / "junk.db").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match=r"junk\.db"):
        Store.open(tmp_path / "junk.db", registry)
    with pytest.raises(TamperedStoreError, match="registry"):
        Store.open(tmp_path / "s.db", Registry(k.public_key for k in rogue_keys))


def test_init_refuses_non_empty_directory(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("hi")
    with pytest.raises(LedgerError, match="not an empty directory"):
        Ledger.init(tmp_path / "x")
    with pytest.raises(LedgerError, match="not a ledger directory"):
        Ledger.open(tmp_path / "x")
