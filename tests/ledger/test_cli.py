"""``prosima ledger ...`` end to end through the command line."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.ledger.log.block import BlockHeader
from prosima.ledger.log.crypto import NodeKey
from prosima.ledger.log.merkle import leaf_hash
from prosima.ledger.log.quorum import QuorumCertificate
from prosima.ledger.log.transaction import Transaction
from prosima.ledger.log.tree_head import SignedTreeHead

runner = CliRunner()


def run(*args, input=None):
    return runner.invoke(app, ["ledger", *map(str, args)], input=input)


@pytest.fixture
def cli_ledger(tmp_path):
    path = tmp_path / "led"
    result = run("init", path, "--nodes", 4, "--json", "-")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert len(info["nodes"]) == 4 and info["threshold"] == 3
    return path


def test_init_creates_private_keys_and_an_empty_store(cli_ledger):
    keys = cli_ledger / "keys"
    assert oct(keys.stat().st_mode & 0o777) == "0o700"
    assert sorted(oct(p.stat().st_mode & 0o777) for p in keys.iterdir()) == ["0o600"] * 4
    assert (cli_ledger / "registry.cbor").is_file() and (cli_ledger / "ledger.db").is_file()
    stats = json.loads(run("stats", "-d", cli_ledger, "--json", "-").stdout)
    assert stats["blocks"] == 0 and stats["transactions"] == 0
    assert run("show", "-d", cli_ledger).exit_code == 2
    again = run("init", cli_ledger)
    assert again.exit_code == 2 and "not an empty directory" in again.output


def test_append_show_proof_check_verify_stats(cli_ledger, tmp_path):
    payload = tmp_path / "p.bin"
    payload.write_bytes(b"\x00\x01image bytes")
    r = run(
        "append", payload, "-d", cli_ledger, "--kind", "image.anchored", "--key", "ab" * 32, "--json", "-"
    )
    assert r.exit_code == 0, r.output
    tx_id = json.loads(r.stdout)["tx_ids"][0]
    r = run("append", "-d", cli_ledger, "--json", "-", input="from stdin")
    assert r.exit_code == 0, r.output
    for _ in range(3):
        assert run("append", "-d", cli_ledger, input="more").exit_code == 0

    shown = json.loads(run("show", "-d", cli_ledger, "--tx", tx_id, "--json", "-").stdout)
    assert shown["transaction"]["kind"] == "image.anchored" and shown["height"] == 0
    assert bytes.fromhex(shown["transaction"]["payload"]) == b"\x00\x01image bytes"
    block = json.loads(run("show", "1", "-d", cli_ledger, "--json", "-").stdout)
    assert block["header"]["height"] == 1 and len(block["quorum"]) == 4
    tip = run("show", "-d", cli_ledger)
    assert tip.exit_code == 0 and "height: 4" in tip.stdout
    by_key = json.loads(run("show", "-d", cli_ledger, "--key", "ab" * 32, "--json", "-").stdout)
    assert [t["id"] for t in by_key["transactions"]] == [tx_id]

    proof_file = tmp_path / "proof.json"
    r = run("proof", "-d", cli_ledger, "--tx", tx_id, "-o", proof_file)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["tree_head"]["tree_size"] == 5 and doc["leaf_index"] == 0
    assert len(doc["inclusion_path"]) == 3
    ok = run("check-proof", proof_file)
    assert ok.exit_code == 0 and "verifies" in ok.stdout
    pinned = run("check-proof", proof_file, "--registry", cli_ledger / "registry.cbor", "--json", "-")
    assert pinned.exit_code == 0 and json.loads(pinned.stdout)["pinned"] is True
    assert run("check-proof", "-", input=proof_file.read_text()).exit_code == 0

    cons = run("proof", "-d", cli_ledger, "--from-height", 1, "--to-height", 3)
    assert cons.exit_code == 0
    assert run("check-proof", "-", input=cons.stdout).exit_code == 0

    v = run("verify", "-d", cli_ledger, "--json", "-", "--registry", cli_ledger / "registry.cbor")
    assert v.exit_code == 0 and json.loads(v.stdout)["transactions"] == 5
    other = tmp_path / "other"
    assert run("init", other, "--nodes", 1).exit_code == 0
    v = run("verify", "-d", cli_ledger, "--registry", other / "registry.cbor")
    assert v.exit_code == 1 and "not the trusted one" in v.output
    stats = json.loads(run("stats", "-d", cli_ledger, "--json", "-").stdout)
    assert stats["blocks"] == 5 and stats["transactions"] == 5 and stats["bytes_per_transaction"] > 0


def _proof(cli_ledger, tmp_path):
    assert run("append", "-d", cli_ledger, input="x").exit_code == 0
    r = run("append", "-d", cli_ledger, "--json", "-", input="y")
    tx_id = json.loads(r.stdout)["tx_ids"][0]
    return json.loads(run("proof", "-d", cli_ledger, "--tx", tx_id).stdout)


def _check(doc_text, *extra):
    return run("check-proof", "-", "--json", "-", *extra, input=doc_text)


def test_forged_and_garbled_proofs_are_refused_with_a_reason(cli_ledger, tmp_path, rogue_keys):
    doc = _proof(cli_ledger, tmp_path)
    text = json.dumps(doc)
    assert _check(text).exit_code == 0

    def forged(mutate):
        d = json.loads(text)
        mutate(d)
        return json.dumps(d)

    def flip_hex(h):
        return f"{int(h[0], 16) ^ 1:x}{h[1:]}"

    cases = {
        "inclusion proof does not verify": [
            forged(lambda d: d["inclusion_path"].__setitem__(0, flip_hex(d["inclusion_path"][0]))),
            forged(lambda d: d.update(leaf_index=d["leaf_index"] ^ 1)),
            forged(lambda d: d["inclusion_path"].pop()),
        ],
        "differ from its certified header": [
            forged(lambda d: d["tree_head"].update(tree_size=d["tree_head"]["tree_size"] + 1))
        ],
        "2 distinct signers; threshold is 3 of 4": [
            forged(lambda d: d["tree_head"].update(certificate=d["tree_head"]["certificate"][:2]))
        ],
        "version 1 documents": [forged(lambda d: d.update(version=1))],
        "tx_id": [forged(lambda d: d.update(tx_id=flip_hex(d["tx_id"])))],
        "not valid JSON": [text[: len(text) // 2], "", "{"],
        "must be lower-case hex": [forged(lambda d: d.update(tx_id=d["tx_id"].upper()))],
        "must be 32 bytes": [
            forged(lambda d: d["inclusion_path"].__setitem__(0, d["inclusion_path"][0][:62]))
        ],
        "missing fields": [forged(lambda d: d.pop("tree_head"))],
        "unexpected fields": [forged(lambda d: d.update(extra=1))],
        "non-negative integer": [
            forged(lambda d: d.update(leaf_index=True)),
            forged(lambda d: d.update(leaf_index=-1)),
        ],
        "duplicate JSON field": [text[:-1] + ', "version": 1}'],
        "unknown document type": [forged(lambda d: d.update(type="other"))],
        "must be a JSON object": ["[1, 2]", "3"],
        "non-canonical": [forged(lambda d: d.update(transaction=d["transaction"] + "00"))],
    }
    not_proofs = ("not valid JSON", "unknown document type", "must be a JSON object", "duplicate JSON field")
    for reason, texts in cases.items():
        for t in texts:
            r = _check(t)
            out = json.loads(r.stdout)
            if reason in not_proofs:  # bad input, not a proof that failed
                assert r.exit_code == 2 and "is not a proof document" in out["error"], (reason, r.output)
                assert reason in out["error"], (reason, out)
                continue
            assert r.exit_code == 1, (reason, r.output)
            assert not out["ok"] and any(reason in p for p in out["problems"]), (reason, out)
    # tree heads forged with one registered key (below the threshold) are refused, pinned or not:
    # a head claiming one more entry, and a one-leaf head over a transaction never committed
    one = NodeKey.load(cli_ledger / "keys" / "node-00.key")
    header = BlockHeader.decode(SignedTreeHead.from_json(doc["tree_head"]).header)
    bigger = _with_head(json.loads(text), replace(header, log_size=header.log_size + 1), [one])
    tx = Transaction.create(one, "data", b"never committed")
    lone = _with_head(
        _one_leaf(json.loads(text), tx), replace(header, log_size=1, log_root=leaf_hash(tx.encode())), [one]
    )
    for forged_text in (bigger, lone):
        for extra in ((), ("--registry", cli_ledger / "registry.cbor")):
            r = _check(forged_text, *extra)
            assert r.exit_code == 1 and "1 distinct signers; threshold is 3 of 4" in r.stdout, r.stdout
    # a whole rogue registry signing a rogue log verifies only until the keys are pinned
    rogue_tx = Transaction.create(rogue_keys[0], "data", b"rogue")
    d = _one_leaf(json.loads(text), rogue_tx)
    d["keys"] = {k.node_id.hex(): k.public_key.hex() for k in rogue_keys}
    rogue_header = replace(
        header, log_size=1, log_root=leaf_hash(rogue_tx.encode()), proposer=rogue_keys[0].node_id
    )
    rogue = _with_head(d, rogue_header, rogue_keys)
    r = _check(rogue)
    assert r.exit_code == 0 and json.loads(r.stdout)["pinned"] is False
    r = _check(rogue, "--registry", cli_ledger / "registry.cbor")
    assert r.exit_code == 1 and "is not in the registry" in r.stdout


def _with_head(d, header, signers):
    """``d`` with its tree head replaced by ``header`` certified by ``signers``."""
    hb = header.encode()
    d["tree_head"] = SignedTreeHead.of_block(hb, QuorumCertificate.sign(hb, signers)).to_json()
    return json.dumps(d)


def _one_leaf(d, tx):
    """``d`` proving ``tx`` as the only leaf."""
    d.update(transaction=tx.encode().hex(), tx_id=tx.tx_id.hex(), leaf_index=0, inclusion_path=[])
    return d


def test_verify_names_the_fault_of_a_tampered_store(cli_ledger):
    for _ in range(3):
        assert run("append", "-d", cli_ledger, input="x").exit_code == 0
    conn = sqlite3.connect(cli_ledger / "ledger.db")
    with conn:
        conn.execute("DELETE FROM blocks WHERE height = 1")
    conn.close()
    r = run("verify", "-d", cli_ledger)
    assert r.exit_code == 1 and "missing block" in r.output and "height 1" in r.output
    r = run("verify", "-d", cli_ledger, "--json", "-")
    assert r.exit_code == 1 and json.loads(r.stdout)["fault"]["kind"] == "missing block"
    r = run("show", "-d", cli_ledger, "--json", "-")
    assert r.exit_code == 1 and json.loads(r.stdout)["ok"] is False
    r = run("append", "-d", cli_ledger, input="refused")
    assert r.exit_code == 1 and "store refused" in r.output


def test_bad_input_is_refused_clearly(cli_ledger, tmp_path):
    r = run("append", "-d", cli_ledger, "--key", "zz", input="x")
    assert r.exit_code == 2 and "--key must be hex" in r.output
    r = run("append", "-d", cli_ledger, "--kind", "Not A Kind", input="x")
    assert r.exit_code == 2 and "kind" in r.output
    r = run("append", tmp_path / "missing.bin", "-d", cli_ledger)
    assert r.exit_code == 2 and "missing.bin" in r.output
    r = run("show", "-d", cli_ledger, "--tx", "00" * 31)
    assert r.exit_code == 2 and "32 bytes" in r.output
    r = run("proof", "-d", cli_ledger)
    assert r.exit_code == 2 and "exactly one" in r.output
    r = run("stats", "-d", tmp_path)
    assert r.exit_code == 2 and "not a ledger directory" in r.output
    r = run("check-proof", tmp_path / "nope.json")
    assert r.exit_code == 2
    key_file = sorted((cli_ledger / "keys").iterdir())[0]
    os.chmod(key_file, 0o644)
    r = run("append", "-d", cli_ledger, input="x")
    assert r.exit_code == 2 and "chmod 600" in r.output
