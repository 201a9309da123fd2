"""Watermark keys on the ledger: a committed key is found with a checked inclusion proof and a
timestamp; a changed key or another kind under the same index is not taken for it."""

from __future__ import annotations

import pytest

from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.encoding import encode
from prosima.provenance.watermark_keys import (
    KIND,
    WatermarkKeyError,
    WatermarkKeyRecord,
    check_key,
    commit_key,
    find_keys,
)
from prosima.watermark.key import WatermarkKey


def _key(target=1, eps=8 / 255):
    return WatermarkKey(
        method="xmark",
        marker={"method": "xmark", "eps": eps, "mask_fraction": 0.25},
        target=target,
        classes=["a", "b"],
        marked_fraction=0.1,
        marked=[{"id": f"b/{i}.png", "sha256": f"{i:02x}" * 32} for i in range(3)],
        files={role: {"path": f"{role}.pt", "sha256": "cd" * 32} for role in ("generator", "surrogate")},
        weights={"generator": "ef" * 32, "surrogate": "01" * 32},
        seeds={"mark": 0, "split": 1},
        verify={"tau": 0.05, "alpha": 0.01},
    )


def test_record_round_trips_with_floats_as_text():
    record = WatermarkKeyRecord.of(_key())
    again = WatermarkKeyRecord.from_payload(record.payload())
    assert again == record and again.marker["eps"] == repr(8 / 255) and again.marked_fraction == "0.1"
    assert again.marked[0] == bytes(32) and again.digest == _key().digest()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff\x00", "not a watermark-key record"),
        (encode({"format": "other"}), "not a prosima.watermark-key-record.v1 record"),
        (encode({"format": "prosima.watermark-key-record.v1", "digest": "00" * 32}), "malformed"),
    ],
)
def test_bad_records_are_refused(payload, message):
    with pytest.raises(WatermarkKeyError, match=message):
        WatermarkKeyRecord.from_payload(payload)


def test_commit_then_check(tmp_path):
    key = _key()
    with Ledger.init(tmp_path / "ledger", nodes=4) as ledger:
        ledger.append([Entry(b"not a key", "data", bytes.fromhex(key.digest()))])  # same index, other kind
        done = commit_key(ledger, key)
        assert done["digest"] == key.digest() and done["time_us"] > 0
        found = find_keys(ledger, key.digest())
        assert [f["tx"] for f in found] == [done["tx"]] and found[0]["proof_ok"]
        verdict = check_key(ledger, key)
        assert verdict["committed"] and verdict["tx"] == done["tx"] and verdict["height"] == done["height"]
        assert not verdict["problems"] and verdict["time_us"] == done["time_us"]
        other = check_key(ledger, _key(target=0))
        assert not other["committed"] and "no watermark key" in other["problems"][0]
    with Ledger.open(tmp_path / "ledger") as ledger:  # survives reopening
        assert check_key(ledger, key)["committed"]
        tx, _, _ = ledger.store.find_tx(bytes.fromhex(done["tx"]))
        assert tx.kind == KIND
