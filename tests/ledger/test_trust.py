"""What one compromised node, a copied key file, a rollback or a fork cannot get past."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.ledger.errors import NodeKeyFileError, StoreError
from prosima.ledger.log.block import Block
from prosima.ledger.log.directory import Entry, Ledger
from prosima.ledger.log.tree_head import SignedTreeHead
from prosima.ledger.log.witness import Witness, since

runner = CliRunner()


def run(*args, input=None):
    return runner.invoke(app, ["ledger", *map(str, args)], input=input)


@pytest.fixture
def ledger_path(tmp_path):
    path = tmp_path / "led"
    with Ledger.init(path, nodes=4) as ledger:
        for i in range(3):
            ledger.append([Entry(f"entry {i}".encode())])
    return path


def _blocks(path) -> int:
    with sqlite3.connect(path / "ledger.db") as conn:
        return conn.execute("SELECT count(*) FROM blocks").fetchone()[0]


def test_two_nodes_sharing_a_key_are_refused_and_nothing_is_written(ledger_path):
    for other in ("node-01.key", "node-02.key"):
        shutil.copy2(ledger_path / "keys" / "node-00.key", ledger_path / "keys" / other)
    with pytest.raises(NodeKeyFileError, match="hold the same node key"):
        Ledger.open(ledger_path)
    r = run("append", "-d", ledger_path, input="below quorum")
    assert r.exit_code == 2 and "hold the same node key" in r.output
    assert _blocks(ledger_path) == 3


def test_a_block_below_quorum_is_refused_even_unverified(ledger_path):
    with Ledger.open(ledger_path) as ledger:
        store = ledger.store
        block = Block.build(
            height=store.height + 1,
            prev_hash=store.tip_hash,
            txs=[],
            log=store.log,
            time=store.tip_time,
            proposer=ledger.keys[0].node_id,
            signers=ledger.keys[:2],
        )
        with pytest.raises(StoreError, match="2 distinct signers; threshold is 3 of 4"):
            store.append(block, signatures=False)
    assert _blocks(ledger_path) == 3


def test_tree_heads_round_trip_and_the_empty_head_claims_nothing(ledger_path):
    with Ledger.open(ledger_path) as ledger:
        for height in (-1, 0, 2):
            head = ledger.tree_head(height)
            assert SignedTreeHead.from_json(json.loads(json.dumps(head.to_json()))) == head
            assert head.check(ledger.registry) is None
    empty = SignedTreeHead.empty().to_json()
    for forged in ({"tree_size": 1}, {"timestamp": 5}, {"height": 0}, {"root_hash": "00" * 32}):
        with pytest.raises(Exception, match="empty log's"):
            SignedTreeHead.from_json(empty | forged)


def _delete_tail(path) -> None:
    """The rollback of the issue: the last block, its transactions and the checkpoint row."""
    with sqlite3.connect(path / "ledger.db") as conn:
        top = conn.execute("SELECT max(height) FROM blocks").fetchone()[0]
        conn.execute("DELETE FROM txs WHERE height = ?", (top,))
        conn.execute("DELETE FROM blocks WHERE height = ?", (top,))
        conn.execute("DELETE FROM meta WHERE key = 'checkpoint'")


def test_a_rollback_passes_verify_but_not_a_kept_head_nor_the_witness(ledger_path, tmp_path):
    state = tmp_path / "witness.json"
    kept = tmp_path / "head.json"
    assert run("head", "-d", ledger_path, "-o", kept).exit_code == 0
    r = run("witness", "-d", ledger_path, "--state", state)
    assert r.exit_code == 0 and "first sight" in r.output
    with Ledger.open(ledger_path) as ledger:
        ledger.append([Entry(b"more")])
    r = run("witness", "-d", ledger_path, "--state", state, "--json", "-")
    assert r.exit_code == 0 and json.loads(r.stdout) | {"problems": []} == {
        "ok": True,
        "problems": [],
        "seen": 3,
        "now": 4,
    }
    before = state.read_bytes()
    _delete_tail(ledger_path)
    _delete_tail(ledger_path)
    assert run("verify", "-d", ledger_path, "--registry", ledger_path / "registry.cbor").exit_code == 0
    r = run("witness", "-d", ledger_path, "--state", state)
    assert r.exit_code == 1 and "shrank from 4 to 2 entries (rolled back)" in r.output
    assert state.read_bytes() == before  # a refused head is not recorded
    with Ledger.open(ledger_path) as ledger:
        head = SignedTreeHead.from_json(json.loads(kept.read_text()))
        assert since(ledger, head) == ["the log shrank from 3 to 2 entries (rolled back)"]


def test_a_fork_and_replaced_keys_are_refused_by_the_witness(ledger_path, tmp_path):
    state = tmp_path / "witness.json"
    twin = tmp_path / "twin"
    shutil.copytree(ledger_path, twin)
    for path, text in ((ledger_path, b"one history"), (twin, b"another history")):
        with Ledger.open(path) as ledger:
            ledger.append([Entry(text)])
    assert run("witness", "-d", ledger_path, "--state", state).exit_code == 0
    r = run("witness", "-d", twin, "--state", state)
    assert r.exit_code == 1 and "does not extend the one of 4 (forked or rewritten)" in r.output
    with Ledger.open(twin) as ledger:
        kept = Witness.load(state).last
        assert kept is not None and "forked" in since(ledger, kept)[0]
    rewritten = tmp_path / "rewritten"
    with Ledger.init(rewritten, nodes=4) as ledger:
        for i in range(5):
            ledger.append([Entry(f"forged {i}".encode())])
    r = run("witness", "-d", rewritten, "--state", state)
    assert r.exit_code == 1 and "not the one this witness pinned" in r.output
    r = run("witness", "-d", rewritten, "--state", state, "--registry", ledger_path / "registry.cbor")
    assert r.exit_code == 1 and "not the trusted one" in r.output


def test_a_garbled_witness_file_is_a_clear_error(ledger_path, tmp_path):
    state = tmp_path / "witness.json"
    for text in (
        "{",
        '{"type": "other"}',
        json.dumps({"type": "x", "version": 1, "registry": "", "heads": 3}),
    ):
        state.write_text(text)
        r = run("witness", "-d", ledger_path, "--state", state)
        assert r.exit_code == 2 and "witness file witness.json" in r.output and "Traceback" not in r.output


def test_a_trimmed_certificate_gets_one_verdict_from_every_reader(ledger_path):
    from prosima.ledger.errors import TamperedStoreError
    from prosima.ledger.log.quorum import QuorumCertificate

    with sqlite3.connect(ledger_path / "ledger.db") as conn:
        qc = QuorumCertificate.decode(conn.execute("SELECT qc FROM blocks WHERE height = 0").fetchone()[0])
        trimmed = QuorumCertificate(qc.signatures[:3])  # still a quorum: 3 of 4
        conn.execute("UPDATE blocks SET qc = ? WHERE height = 0", (trimmed.encode(),))
    with Ledger.open(ledger_path, verify="none") as ledger:
        fault = ledger.verify().fault
    assert fault is not None and "changed" in fault.detail
    with pytest.raises(TamperedStoreError) as err:
        Ledger.open(ledger_path)
    assert (err.value.fault.kind, err.value.fault.detail) == (fault.kind, fault.detail)
    assert run("verify", "-d", ledger_path).exit_code == 1
