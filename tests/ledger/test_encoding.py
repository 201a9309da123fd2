"""Canonical CBOR: one encoding per value, everything else refused with a message."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prosima.ledger.errors import EncodingError
from prosima.ledger.log.block import BlockHeader
from prosima.ledger.log.encoding import decode, encode
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.transaction import Transaction

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(values)
def test_round_trip_is_exact(value):
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data


def test_key_order_does_not_change_the_encoding():
    assert encode({"b": 1, "a": 2, "cc": 3}) == encode({"cc": 3, "a": 2, "b": 1})


@pytest.mark.parametrize(
    ("hex_data", "reason"),
    [
        ("1801", "non-canonical"),  # 1 in a two-byte form
        ("190001", "non-canonical"),
        ("0102", "non-canonical"),  # trailing byte
        ("a2616101616102", "Duplicate"),  # duplicate key
        ("a2616202616101", "non-canonical"),  # keys out of order
        ("9f01ff", "indefinite"),  # indefinite-length array
        ("5f4101ff", "indefinite"),
        ("f93c00", "float"),
        ("fb3ff0000000000000", "float"),
        ("c11a514b67b0", "datetime"),  # tag 1
        ("d8636161", "tag"),  # unknown tag 99
        ("a10161", "malformed"),  # truncated map
        ("", "empty"),
        ("ff", "malformed"),
        ("5a ffffffff", "malformed"),
    ],
)
def test_non_canonical_or_malformed_is_refused(hex_data, reason):
    with pytest.raises(EncodingError, match=reason):
        decode(bytes.fromhex(hex_data.replace(" ", "")))


def test_encode_refuses_values_outside_the_model():
    for bad in (1.5, 2**64, -(2**63) - 1, {1: 2}, {"a": {1.0}}, object()):
        with pytest.raises(EncodingError):
            encode(bad)
    deep: list = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(EncodingError, match="deeper"):
        encode(deep)


def test_records_refuse_missing_extra_and_mistyped_fields(keys):
    tx = Transaction.create(keys[0], "data", b"x", b"k", 7)
    body = cbor2.loads(tx.encode())
    assert Transaction.decode(tx.encode()) == tx
    for mutate in (
        lambda d: d.pop("sig"),
        lambda d: d.update(extra=1),
        lambda d: d.update(time="7"),
        lambda d: d.update(time=True),
        lambda d: d.update(payload="x"),
        lambda d: d.update(v=2),
        lambda d: d.update(kind="Bad Kind"),
        lambda d: d.update(signer=b"short"),
        lambda d: d.update(sig=b"\x00" * 63),
    ):
        d = dict(body)
        mutate(d)
        with pytest.raises(EncodingError):
            Transaction.decode(cbor2.dumps(d, canonical=True))
    with pytest.raises(EncodingError, match="not text"):
        decode(bytes.fromhex("a10102"))  # {1: 2}
    with pytest.raises(EncodingError, match="non-canonical"):
        Transaction.decode(cbor2.dumps(dict(reversed(body.items()))))  # keys out of canonical order
    with pytest.raises(EncodingError):
        BlockHeader.decode(encode({"v": 1}))
    with pytest.raises(EncodingError):
        QuorumCertificate.decode(encode({"v": 1, "sigs": [[b"\x00" * 16]]}))


def test_quorum_certificate_must_be_sorted_and_distinct(keys):
    sig = b"\x01" * 64
    a, b = sorted([keys[0].node_id, keys[1].node_id])
    QuorumCertificate(((a, sig), (b, sig)))
    with pytest.raises(EncodingError, match="sorted and distinct"):
        QuorumCertificate(((b, sig), (a, sig)))
    with pytest.raises(EncodingError, match="sorted and distinct"):
        QuorumCertificate(((a, sig), (a, sig)))
