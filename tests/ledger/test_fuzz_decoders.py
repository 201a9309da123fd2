"""Fuzz targets for every decoder of untrusted bytes: on arbitrary input, and on valid encodings
with bits flipped, bytes replaced, inserted or deleted, truncated or extended, each decoder returns
a value or raises its documented error (``EncodingError`` for the canonical CBOR structures,
``RecordError`` for image records, ``ProofError`` for JSON documents and tree heads) with a message;
never any other exception. ``check_document`` never raises at all, and a mutated document that still
verifies proves the same statement. Valid values round-trip exactly.

Examples are derandomized (no example database), so a run is reproducible; the whole file takes a
few seconds on one core.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prosima.ledger.consensus.messages import Commit, Decided, Prepare, Proposal, TxBatch
from prosima.ledger.errors import EncodingError, LedgerError, ProofError
from prosima.ledger.log.block import BlockHeader
from prosima.ledger.log.checkpoint import Checkpoint
from prosima.ledger.log.crypto import NODE_ID_SIZE, SIGNATURE_SIZE, NodeKey
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.encoding import decode, encode
from prosima.ledger.log.hexjson import loads
from prosima.ledger.log.merkle import HASH_SIZE
from prosima.ledger.log.proof import ProofCheck, check_document
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.registry import Registry
from prosima.ledger.log.transaction import MAX_KEY, Transaction
from prosima.ledger.log.tree_head import SignedTreeHead
from prosima.provenance.records import SOURCE_KEYS, AnchorRecord, RecordError, RestorationRecord


def fuzz(n: int) -> settings:
    """``n`` derandomized examples, no deadline, no example database."""
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


# -- valid values ------------------------------------------------------------------------

U63 = st.integers(0, 2**63 - 1)
H32 = st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE)
NODE = st.binary(min_size=NODE_ID_SIZE, max_size=NODE_ID_SIZE)
SIG = st.binary(min_size=SIGNATURE_SIZE, max_size=SIGNATURE_SIZE)
HEX32 = H32.map(bytes.hex)
HEX8 = st.binary(min_size=8, max_size=8).map(bytes.hex)
SHORT_TEXT = st.text(max_size=12)

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.binary(max_size=24)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
transactions = st.builds(
    Transaction,
    st.from_regex(r"[a-z][a-z0-9_.-]{0,15}", fullmatch=True),
    st.binary(max_size=48),
    st.binary(max_size=MAX_KEY),
    U63,
    NODE,
    SIG,
)
headers = st.builds(BlockHeader, U63, H32, H32, U63, U63, H32, U63, NODE)
certificates = st.dictionaries(NODE, SIG, max_size=5).map(
    lambda d: QuorumCertificate(tuple(sorted(d.items())))
)
checkpoints = st.builds(Checkpoint, U63, H32, U63, H32, H32, NODE, SIG)
registries = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=5, unique=True).map(
    lambda seeds: Registry(NodeKey.from_seed(s).public_key for s in seeds)
)
IDS = st.lists(H32, max_size=4).map(tuple)
messages = st.one_of(
    st.lists(transactions.map(Transaction.encode), max_size=3).map(lambda t: TxBatch(tuple(t))),
    st.builds(Proposal, U63, U63, headers.map(BlockHeader.encode) | st.just(b""), IDS),
    st.builds(Prepare, U63, U63, headers.map(BlockHeader.encode) | st.just(b""), IDS, IDS),
    st.builds(Commit, U63, U63, H32, SIG),
    st.builds(Decided, U63, headers.map(BlockHeader.encode), IDS, certificates.map(QuorumCertificate.encode)),
)


@st.composite
def anchor_records(draw: st.DrawFn) -> AnchorRecord:
    k = draw(st.sampled_from([1, 4]))
    ids = [draw(st.binary(min_size=16, max_size=16)).hex() for _ in range(k)]
    return AnchorRecord(
        pixels=draw(HEX32),
        shape=(draw(st.integers(1, 4096)), draw(st.integers(1, 4096))),
        k=k,
        shard_ids=ids,
        shard_pixels=[draw(HEX32) for _ in range(k)],
        shard_fingerprints=[draw(HEX32) for _ in range(k)],
        fingerprint=draw(HEX32),
        encoder=draw(SHORT_TEXT),
        source=draw(st.dictionaries(st.sampled_from(SOURCE_KEYS), SHORT_TEXT, max_size=3)),
        link=draw(st.one_of(st.just({}), st.builds(lambda k, d: {"key": k, "sop": d}, HEX8, HEX32))),
    )


restoration_records = st.builds(
    RestorationRecord,
    input_pixels=HEX32,
    output_pixels=HEX32,
    output_shard_pixels=st.lists(HEX32, max_size=4),
    original=HEX32,
    model=SHORT_TEXT,
    model_name=SHORT_TEXT,
    encoder=SHORT_TEXT,
    params=st.dictionaries(SHORT_TEXT, SHORT_TEXT, max_size=3),
)

# decoder -> (its documented error, valid encodings to mutate)
DECODERS: dict[str, tuple[Callable[[bytes], Any], type[LedgerError], st.SearchStrategy[bytes]]] = {
    "encoding.decode": (decode, EncodingError, values.map(encode)),
    "encoding.decode(canonical=False)": (
        lambda b: decode(b, canonical=False),
        EncodingError,
        values.map(encode),
    ),
    "Transaction.decode": (Transaction.decode, EncodingError, transactions.map(Transaction.encode)),
    "BlockHeader.decode": (BlockHeader.decode, EncodingError, headers.map(BlockHeader.encode)),
    "QuorumCertificate.decode": (
        QuorumCertificate.decode,
        EncodingError,
        certificates.map(QuorumCertificate.encode),
    ),
    "Checkpoint.decode": (Checkpoint.decode, EncodingError, checkpoints.map(Checkpoint.encode)),
    "Registry.from_bytes": (Registry.from_bytes, EncodingError, registries.map(Registry.to_bytes)),
    "TxBatch.decode": (TxBatch.decode, EncodingError, messages.map(lambda m: m.encode())),
    "Proposal.decode": (Proposal.decode, EncodingError, messages.map(lambda m: m.encode())),
    "Prepare.decode": (Prepare.decode, EncodingError, messages.map(lambda m: m.encode())),
    "Commit.decode": (Commit.decode, EncodingError, messages.map(lambda m: m.encode())),
    "Decided.decode": (Decided.decode, EncodingError, messages.map(lambda m: m.encode())),
    "AnchorRecord.from_payload": (
        AnchorRecord.from_payload,
        RecordError,
        anchor_records().map(AnchorRecord.payload),
    ),
    "RestorationRecord.from_payload": (
        RestorationRecord.from_payload,
        RecordError,
        restoration_records.map(RestorationRecord.payload),
    ),
    "hexjson.loads": (loads, ProofError, values.map(lambda v: json.dumps(v, default=bytes.hex).encode())),
}


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[bytes]) -> bytes:
    """A valid encoding with 1 to 4 random edits: a bit flip, a replaced, inserted or deleted
    byte, a truncation or an extension."""
    data = bytearray(draw(valid))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "replace", "insert", "delete", "truncate", "extend"]))
        if op == "extend" or not data:
            data += draw(st.binary(min_size=1, max_size=8))
            continue
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "replace":
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data.insert(i, draw(st.integers(0, 255)))
        elif op == "delete":
            del data[i]
        else:
            del data[i:]
    return bytes(data)


def decodes_or_refuses(decoder: Callable[[bytes], Any], error: type[LedgerError], data: bytes) -> None:
    """``decoder(data)`` returns, or raises ``error`` with a message; anything else escapes."""
    try:
        decoder(data)
    except error as exc:
        assert str(exc).strip(), "the error must name the problem"


# -- every byte decoder ------------------------------------------------------------------


@pytest.mark.parametrize("name", DECODERS)
@fuzz(150)
@given(data=st.data())
def test_arbitrary_bytes_decode_or_raise_the_documented_error(name, data):
    decoder, error, _ = DECODERS[name]
    decodes_or_refuses(decoder, error, data.draw(st.binary(max_size=96), label="input"))


@pytest.mark.parametrize("name", DECODERS)
@fuzz(150)
@given(data=st.data())
def test_mutated_valid_encodings_decode_or_raise_the_documented_error(name, data):
    decoder, error, valid = DECODERS[name]
    decodes_or_refuses(decoder, error, data.draw(mutated(valid), label="input"))


@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize("junk", [None, "text", 5, [1], 1.5])
def test_inputs_that_are_not_bytes_raise_the_documented_error(name, junk):
    decoder, error, _ = DECODERS[name]
    if name == "hexjson.loads" and isinstance(junk, str):
        junk = "{"  # loads reads text too
    with pytest.raises(error):
        decoder(junk)


# -- round trips -------------------------------------------------------------------------


@fuzz(100)
@given(values)
def test_canonical_values_round_trip(value):
    data = encode(value)
    assert decode(data) == value and decode(data, canonical=False) == value
    assert encode(decode(data)) == data


@fuzz(60)
@given(transactions, headers, certificates, checkpoints)
def test_structures_round_trip(tx, header, qc, cp):
    for value in (tx, header, qc, cp):
        data = value.encode()
        back = type(value).decode(data)
        assert back == value and back.encode() == data
    assert Transaction.decode(tx.encode()).tx_id == tx.tx_id


@fuzz(30)
@given(registries)
def test_registries_round_trip(registry):
    back = Registry.from_bytes(registry.to_bytes())
    assert back.members == registry.members and back.to_bytes() == registry.to_bytes()


@fuzz(60)
@given(messages)
def test_messages_round_trip(message):
    assert type(message).decode(message.encode()) == message


@fuzz(40)
@given(anchor_records(), restoration_records)
def test_records_round_trip(anchor, restoration):
    assert AnchorRecord.from_payload(anchor.payload()) == anchor
    assert RestorationRecord.from_payload(restoration.payload()) == restoration


# -- proof documents and tree heads ------------------------------------------------------


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict[str, Any]:
    """A 4-node ledger of three blocks: its registry, tree heads and proof documents."""
    with Ledger.init(tmp_path_factory.mktemp("fuzz") / "ledger", nodes=4) as ledger:
        blocks = [ledger.append([Entry(f"tx-{h}-{i}".encode()) for i in range(h + 1)]) for h in range(3)]
        docs = [ledger.inclusion_proof(tx.tx_id) for b in blocks for tx in b.txs]
        docs += [ledger.consistency_proof(h) for h in (-1, 0, 1, 2)]
        heads = [ledger.tree_head(h) for h in (-1, 0, 1, 2)]
        registry = ledger.registry
    for doc in docs:
        assert check_document(doc, registry=registry).ok and check_document(json.dumps(doc)).ok
    return {"registry": registry, "docs": docs, "heads": heads}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["", "00", "ab" * 16, "ab" * 32, "AB" * 16, "-1"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def edited(draw: st.DrawFn, obj: Any) -> Any:
    """``obj`` (JSON) with one value somewhere replaced or deleted, or a field added."""
    obj = copy.deepcopy(obj)
    parent, node = None, obj
    while isinstance(node, dict | list) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node))))
        parent, node = (node, key), node[key]
    if parent is None:
        if isinstance(obj, dict):
            obj[draw(st.sampled_from([*sorted(obj), "extra"]))] = draw(json_values)
            return obj
        return draw(json_values)
    container, key = parent
    op = draw(st.sampled_from(["replace", "delete", "add"]))
    if op == "delete":
        del container[key]
    elif op == "add" and isinstance(container, dict):
        container[f"{key}x"] = draw(json_values)
    elif op == "add":
        container.append(draw(json_values))
    else:
        container[key] = draw(json_values)
    return obj


def statement(check: ProofCheck) -> dict[str, Any]:
    """What a verifying document proves (its details minus the proof's own size)."""
    return {k: v for k, v in check.details.items() if k != "proof_bytes"}


def well_formed(check: object) -> ProofCheck:
    assert isinstance(check, ProofCheck) and isinstance(check.ok, bool) and isinstance(check.kind, str)
    assert all(isinstance(p, str) and p.strip() for p in check.problems)
    assert check.ok or check.problems, "a failed check names its problem"
    for p in check.problems:
        p.encode("utf-8")  # printable: no lone surrogates from the input
    return check


@fuzz(150)
@given(st.binary(max_size=200) | st.text(max_size=120))
def test_check_document_on_arbitrary_input_fails_cleanly(text):
    assert not well_formed(check_document(text)).ok


@fuzz(200)
@given(data=st.data())
def test_a_mutated_document_fails_cleanly_or_proves_the_same_statement(chain, data):
    registry = chain["registry"]
    doc = data.draw(st.sampled_from(chain["docs"]), label="document")
    original = check_document(doc, registry=registry)
    changed = data.draw(edited(doc), label="edited")
    for pinned in (registry, None):
        check = well_formed(check_document(changed, registry=pinned))
        if check.ok:
            assert check.kind == original.kind and statement(check) == statement(original)
            if doc["type"].endswith("inclusion-proof"):
                assert changed["transaction"] == doc["transaction"]


@fuzz(150)
@given(data=st.data())
def test_document_text_with_random_edits_fails_cleanly_or_proves_the_same_statement(chain, data):
    registry = chain["registry"]
    doc = data.draw(st.sampled_from(chain["docs"]), label="document")
    original = check_document(doc, registry=registry)
    raw = data.draw(mutated(st.just(json.dumps(doc).encode())), label="text")
    check = well_formed(check_document(raw, registry=registry))
    if check.ok:
        assert check.kind == original.kind and statement(check) == statement(original)


def tree_head_or_refusal(obj: Any) -> SignedTreeHead | None:
    try:
        head = SignedTreeHead.from_json(obj)
    except ProofError as exc:
        assert str(exc).strip()
        return None
    assert isinstance(head, SignedTreeHead)
    return head


@fuzz(150)
@given(json_values)
def test_tree_head_from_arbitrary_json_is_refused_cleanly(obj):
    tree_head_or_refusal(obj)


@fuzz(200)
@given(data=st.data())
def test_an_edited_tree_head_is_refused_or_still_certified_for_the_same_log(chain, data):
    registry = chain["registry"]
    head = data.draw(st.sampled_from(chain["heads"]), label="head")
    got = tree_head_or_refusal(data.draw(edited(head.to_json()), label="edited"))
    if got is not None and got.check(registry) is None:
        assert (got.height, got.tree_size, got.root_hash) == (head.height, head.tree_size, head.root_hash)


@fuzz(100)
@given(data=st.data())
def test_tree_head_text_with_random_edits_is_refused_cleanly(chain, data):
    head = data.draw(st.sampled_from(chain["heads"]), label="head")
    raw = data.draw(mutated(st.just(json.dumps(head.to_json()).encode())), label="text")
    try:
        obj = loads(raw)
    except ProofError:
        return
    tree_head_or_refusal(obj)


def test_tree_heads_round_trip_through_json(chain):
    for head in chain["heads"]:
        assert SignedTreeHead.from_json(head.to_json()) == head
        assert SignedTreeHead.from_json(loads(json.dumps(head.to_json()))) == head
        assert head.check(chain["registry"]) is None
