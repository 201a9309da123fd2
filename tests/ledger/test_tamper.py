"""Tampering with a real store file: every edit is caught on open and named by ``verify``."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from pathlib import Path

import pytest

from prosima.ledger.errors import StoreError, TamperedStoreError
from prosima.ledger.log.block import BlockHeader
from prosima.ledger.log.directory import REGISTRY_FILE, STORE_FILE, Ledger
from prosima.ledger.log.fault import FaultKind
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.registry import Registry


def _sql(path: Path, *statements: tuple[str, tuple]) -> None:
    conn = sqlite3.connect(path / STORE_FILE)
    with conn:
        for sql, args in statements:
            conn.execute(sql, args)
    conn.close()


def _row(path: Path, sql: str, args: tuple = ()):
    conn = sqlite3.connect(path / STORE_FILE)
    try:
        return conn.execute(sql, args).fetchone()
    finally:
        conn.close()


def _caught(path: Path, kind: FaultKind, height: int | None) -> None:
    """Refused on a default (incremental) open and on a full open; ``verify`` names the fault."""
    with pytest.raises(TamperedStoreError):
        Ledger.open(path)
    with pytest.raises(TamperedStoreError) as err:
        Ledger.open(path, verify="full")
    assert err.value.fault.kind == kind, str(err.value)
    with Ledger.open(path, verify="none") as ledger:
        report = ledger.verify()
    assert not report.ok and report.fault.kind == kind, report.fault
    if height is not None:
        assert report.fault.height == height


def _flip_in_file(path: Path, needle: bytes, offset: int) -> None:
    db = path / STORE_FILE
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0
    data = bytearray(db.read_bytes())
    at = data.find(needle)
    assert at >= 0 and data.find(needle, at + 1) < 0
    data[at + offset] ^= 0x01
    db.write_bytes(bytes(data))


def test_untouched_store_opens_and_verifies(ledger_path):
    with Ledger.open(ledger_path, verify="full") as ledger:
        assert ledger.verify().ok


def test_one_byte_of_a_stored_header_in_the_file(ledger_path):
    header = bytes(_row(ledger_path, "SELECT header FROM blocks WHERE height = 2")[0])
    at = header.find(b"dprev") + len(b"dprev") + 2  # past the 0x58 0x20 byte-string head
    _flip_in_file(ledger_path, header, at + 5)
    _caught(ledger_path, FaultKind.HASH_LINK, 2)


def test_one_byte_of_a_stored_transaction_in_the_file(ledger_path):
    data = bytes(_row(ledger_path, "SELECT data FROM txs WHERE height = 4 ORDER BY seq LIMIT 1")[0])
    _flip_in_file(ledger_path, data, data.find(b"payload 4.0") + 3)
    _caught(ledger_path, FaultKind.MERKLE_ROOT, 4)


def test_delete_a_block(ledger_path):
    _sql(ledger_path, ("DELETE FROM blocks WHERE height = 3", ()), ("DELETE FROM txs WHERE height = 3", ()))
    _caught(ledger_path, FaultKind.MISSING_BLOCK, 3)


def test_delete_the_last_block_is_caught_by_the_checkpoint(ledger_path):
    _sql(ledger_path, ("DELETE FROM blocks WHERE height = 5", ()), ("DELETE FROM txs WHERE height = 5", ()))
    _caught(ledger_path, FaultKind.TRUNCATED, 5)


def test_swap_two_blocks(ledger_path):
    h2 = _row(ledger_path, "SELECT header, qc FROM blocks WHERE height = 2")
    h3 = _row(ledger_path, "SELECT header, qc FROM blocks WHERE height = 3")
    _sql(
        ledger_path,
        ("UPDATE blocks SET header = ?, qc = ? WHERE height = 2", tuple(h3)),
        ("UPDATE blocks SET header = ?, qc = ? WHERE height = 3", tuple(h2)),
        ("UPDATE txs SET height = -1 WHERE height = 2", ()),
        ("UPDATE txs SET height = 2 WHERE height = 3", ()),
        ("UPDATE txs SET height = 3 WHERE height = -1", ()),
    )
    _caught(ledger_path, FaultKind.HEIGHT, 2)


@pytest.mark.parametrize("source", ["zeros", "other block"])
def test_replace_a_signature(ledger_path, source):
    qc = QuorumCertificate.decode(_row(ledger_path, "SELECT qc FROM blocks WHERE height = 4")[0])
    other = QuorumCertificate.decode(_row(ledger_path, "SELECT qc FROM blocks WHERE height = 1")[0])
    sigs = list(qc.signatures)
    sigs[2] = (sigs[2][0], bytes(64) if source == "zeros" else other.signatures[2][1])
    _sql(
        ledger_path, ("UPDATE blocks SET qc = ? WHERE height = 4", (QuorumCertificate(tuple(sigs)).encode(),))
    )
    _caught(ledger_path, FaultKind.SIGNATURE, 4)


def test_replay_an_old_block(ledger_path):
    header, qc = _row(ledger_path, "SELECT header, qc FROM blocks WHERE height = 1")
    rows = [(6, bytes(header), bytes(qc))]
    _sql(ledger_path, ("INSERT INTO blocks (height, header, qc) VALUES (?, ?, ?)", rows[0]))
    _caught(ledger_path, FaultKind.HEIGHT, 6)


def test_forge_a_quorum_with_unregistered_keys(ledger_path, rogue_keys):
    header = BlockHeader.decode(_row(ledger_path, "SELECT header FROM blocks WHERE height = 5")[0])
    forged = dataclasses.replace(header, time=header.time + 1)  # a rewritten last block ...
    qc = QuorumCertificate.sign(forged.encode(), rogue_keys)  # ... with a quorum of strangers
    _sql(
        ledger_path, ("UPDATE blocks SET header = ?, qc = ? WHERE height = 5", (forged.encode(), qc.encode()))
    )
    _caught(ledger_path, FaultKind.UNKNOWN_SIGNER, 5)


def test_replace_the_registry_with_the_forgers_keys(ledger_path, rogue_keys):
    Registry(k.public_key for k in rogue_keys).save(ledger_path / REGISTRY_FILE)
    shutil.rmtree(ledger_path / "keys")
    with pytest.raises(TamperedStoreError, match="registry"):
        Ledger.open(ledger_path)


def test_edited_index_columns(ledger_path):
    _sql(ledger_path, ("UPDATE txs SET id = zeroblob(32) WHERE seq = 4", ()))
    _caught(ledger_path, FaultKind.INDEX, 2)


def test_orphan_transaction_rows(ledger_path):
    data = _row(ledger_path, "SELECT data FROM txs WHERE seq = 0")[0]
    _sql(
        ledger_path,
        ("INSERT INTO txs (seq, id, height, key, data) VALUES (99, zeroblob(32), 99, NULL, ?)", (data,)),
    )
    _caught(ledger_path, FaultKind.INDEX, None)


def test_garbled_checkpoint(ledger_path):
    _sql(ledger_path, ("UPDATE meta SET value = x'a0' WHERE key = 'checkpoint'", ()))
    with pytest.raises(TamperedStoreError) as err:
        Ledger.open(ledger_path)
    assert err.value.fault.kind == FaultKind.CHECKPOINT


def test_a_store_file_that_is_not_sqlite(ledger_path):
    (ledger_path / STORE_FILE).write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(StoreError, match=STORE_FILE):
        Ledger.open(ledger_path)
