"""The payload-key index: every index column is rebuilt and compared on open and by ``verify``,
and ``txs_by_key`` re-checks the rows it returns."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from prosima.ledger.errors import TamperedStoreError
from prosima.ledger.log.directory import STORE_FILE, Entry, Ledger
from prosima.ledger.log.fault import FaultKind
from prosima.ledger.log.store import Store


def _sql(path: Path, sql: str, args: tuple = ()) -> None:
    conn = sqlite3.connect(path / STORE_FILE)
    with conn:
        conn.execute(sql, args)
    conn.close()


def _refused(path: Path, height: int) -> None:
    """Refused by both verifying opens; ``verify`` names an index fault at ``height``."""
    for mode in ("incremental", "full"):
        with pytest.raises(TamperedStoreError) as err:
            Ledger.open(path, verify=mode)
        assert err.value.fault.kind == FaultKind.INDEX and err.value.fault.height == height, mode
    with Ledger.open(path, verify="none") as ledger:
        report = ledger.verify()
        with pytest.raises(TamperedStoreError):
            Store.open(path / STORE_FILE, ledger.registry)
    assert not report.ok and report.fault.kind == FaultKind.INDEX and report.fault.height == height


def test_key_set_to_another_images_digest(ledger_path):
    other = bytes([3, 2])  # the key of a transaction at height 3
    _sql(ledger_path, "UPDATE txs SET key = ? WHERE height = 0", (other,))
    _refused(ledger_path, 0)
    with Ledger.open(ledger_path, verify="none") as ledger, pytest.raises(TamperedStoreError) as err:
        ledger.store.txs_by_key(other)
    assert err.value.fault.kind == FaultKind.INDEX and err.value.fault.height == 0


def test_key_set_to_null_hides_the_authentic_record(ledger_path):
    _sql(ledger_path, "UPDATE txs SET key = NULL WHERE height = 4 AND seq = 11")
    _refused(ledger_path, 4)


def test_key_added_to_a_transaction_without_one(ledger_path):
    with Ledger.open(ledger_path) as ledger:
        ledger.append([Entry(b"no key")])
    _sql(ledger_path, "UPDATE txs SET key = x'0000' WHERE height = 6")
    _refused(ledger_path, 6)


def test_txs_by_key_rechecks_rows_changed_after_open(ledger_path):
    with Ledger.open(ledger_path) as ledger:
        store = ledger.store
        assert [r[1] for r in store.txs_by_key(bytes([2, 1]))] == [2]
        # rows of two transactions swapped whole (id, key and data stay consistent with each
        # other), so only the verified log shows that the rows are not where they belong
        conn = sqlite3.connect(ledger_path / STORE_FILE)
        a = conn.execute("SELECT id, key, data FROM txs WHERE seq = 4").fetchone()
        b = conn.execute("SELECT id, key, data FROM txs WHERE seq = 5").fetchone()
        with conn:
            conn.execute("UPDATE txs SET id = zeroblob(32) WHERE seq = 4")
            conn.execute("UPDATE txs SET id = ?, key = ?, data = ? WHERE seq = 5", tuple(a))
            conn.execute("UPDATE txs SET id = ?, key = ?, data = ? WHERE seq = 4", tuple(b))
        conn.close()
        with pytest.raises(TamperedStoreError) as err:
            store.txs_by_key(bytes([2, 1]))
        assert err.value.fault.kind == FaultKind.INDEX


def test_txs_by_key_refuses_data_that_is_not_the_indexed_transaction(ledger_path):
    data = sqlite3.connect(ledger_path / STORE_FILE).execute("SELECT data FROM txs WHERE seq = 0").fetchone()
    _sql(ledger_path, "UPDATE txs SET data = ? WHERE seq = 7", (data[0],))
    with Ledger.open(ledger_path, verify="none") as ledger:
        store = ledger.store
        with pytest.raises(TamperedStoreError, match="does not hash to its id"):
            store.txs_by_key(bytes([3, 1]))
