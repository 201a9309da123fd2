"""Proof documents checked offline: valid ones pass, any single-bit change fails, garbage never raises."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.proof import check_document


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    path = tmp_path_factory.mktemp("proofs") / "ledger"
    with Ledger.init(path, nodes=4) as ledger:
        blocks = [ledger.append([Entry(f"{b}/{i}".encode()) for i in range(b % 5 + 1)]) for b in range(9)]
        docs = [ledger.inclusion_proof(tx.tx_id) for blk in blocks[::2] for tx in blk.txs[:2]]
        docs += [ledger.consistency_proof(a, b) for a, b in ((0, 8), (2, 5), (-1, 3), (4, 4), (7, 8))]
        registry = ledger.registry
    return docs, registry


def _flip_bit(value, bit):
    if isinstance(value, int):
        return value ^ (1 << bit % 63)
    digits = list(value)
    pos = bit // 4 % len(digits)
    digits[pos] = f"{int(digits[pos], 16) ^ (1 << bit % 4):x}"
    return "".join(digits)


def _paths(doc, prefix=()):
    """Every (path, value) leaf whose value is a hex string or an integer."""
    if isinstance(doc, dict):
        items = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        return [(prefix, doc)] if isinstance(doc, int | str) else []
    out = []
    for k, v in items:
        if k in ("type", "version") or (prefix and prefix[0] == "keys"):
            continue
        out += _paths(v, (*prefix, k))
    return out


def _set(doc, path, value):
    target = doc
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value


def test_every_document_verifies_pinned(documents):
    docs, registry = documents
    for doc in docs:
        result = check_document(json.dumps(doc), registry=registry)
        assert result.ok and result.pinned, result.problems


def test_inclusion_proofs_are_at_most_32_log2_n_bytes(documents):
    docs, _ = documents
    for doc in docs:
        if doc["type"].endswith("inclusion-proof"):
            n = doc["tree_head"]["tree_size"]
            assert 32 * len(doc["inclusion_path"]) <= 32 * max(1, (n - 1).bit_length())


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_single_bit_change_fails(documents, data):
    docs, registry = documents
    doc = json.loads(json.dumps(data.draw(st.sampled_from(docs))))
    paths = _paths(doc)
    path, value = data.draw(st.sampled_from(paths))
    changed = _flip_bit(value, data.draw(st.integers(0, 255)))
    _set(doc, path, changed)
    result = check_document(json.dumps(doc), registry=registry)
    assert not result.ok, (path, value, changed)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=8),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_garbage_never_raises(documents, data):
    docs, _ = documents
    original = data.draw(st.sampled_from(docs))
    base = json.loads(json.dumps(original))
    base[data.draw(st.sampled_from(sorted(base)))] = data.draw(json_values)
    result = check_document(json.dumps(base))
    assert result.ok is False or base == original
    text = data.draw(st.binary(max_size=200))
    assert check_document(text).ok is False
    assert check_document(json.dumps(data.draw(json_values))).ok is False
