"""The in-memory record index: built from the records' own bytes, and one junk record signed by a
registered node does not stop verification for the whole ledger."""

from __future__ import annotations

from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.proof import check_document
from prosima.ledger.log.transaction import TxKind
from prosima.provenance.index import RecordIndex


def test_a_junk_image_record_is_skipped_and_reported(tmp_path):
    with Ledger.init(tmp_path / "led", nodes=4) as ledger:
        block = ledger.append(
            [Entry(b"not cbor", TxKind.IMAGE_ANCHORED), Entry(b"\xa0", TxKind.IMAGE_RESTORED)]
        )
        index = RecordIndex(ledger).refresh()
        assert index.by_tx == {} and index.by_pixels == {}
        assert index.unreadable == [tx.tx_id.hex() for tx in block.txs]


def test_a_proof_check_never_raises_on_a_value_that_is_not_a_document():
    for value in (None, 5, [1], 2.5):
        check = check_document(value)  # type: ignore[arg-type]
        assert not check.ok and "not" in check.problems[0]
