"""A ledger without blocks, with or without a checkpoint, verifies and answers clearly."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.ledger.errors import TamperedStoreError
from prosima.ledger.log.checkpoint import EMPTY_DIGEST, Checkpoint
from prosima.ledger.log.directory import STORE_FILE, Entry, Ledger
from prosima.ledger.log.fault import FaultKind
from prosima.ledger.log.merkle import EMPTY_ROOT
from prosima.ledger.log.store import Store

runner = CliRunner()


def run(*args):
    return runner.invoke(app, ["ledger", *map(str, args)])


def test_cli_on_a_fresh_ledger(tmp_path):
    path = tmp_path / "led"
    assert run("init", path).exit_code == 0
    assert run("stats", "-d", path).exit_code == 0  # writes a checkpoint at height -1
    for _ in range(2):
        r = run("verify", "-d", path)
        assert r.exit_code == 0 and "ok: 0 blocks, 0 transactions" in r.stdout, r.output
    report = json.loads(run("verify", "-d", path, "--json", "-").stdout)
    assert report["ok"] and report["blocks"] == 0 and report["height"] == -1
    r = run("show", "-d", path)
    assert r.exit_code == 2 and "no blocks yet" in r.output
    r = run("show", "-d", path, "--key", "abcd")
    assert r.exit_code == 0 and "no transactions" in r.stdout
    r = run("proof", "-d", path, "--tx", "00" * 32)
    assert r.exit_code == 2 and "no transaction with id" in r.output and "Traceback" not in r.output
    r = run("proof", "-d", path, "--from-height", "-1")
    assert r.exit_code == 0 and json.loads(r.stdout)["new_tree_head"]["tree_size"] == 0


def test_empty_store_without_a_checkpoint(tmp_path, registry):
    Store.create(tmp_path / "s.db", registry).close()
    for mode in ("full", "incremental", "none"):
        with Store.open(tmp_path / "s.db", registry, verify=mode) as store:
            assert store.checkpoint() is None and store.height == -1
            report = store.verify()
            assert report.ok and report.blocks == 0 and report.height == -1


def test_checkpoint_at_minus_one_then_blocks_without_a_new_checkpoint(tmp_path):
    path = tmp_path / "led"
    Ledger.init(path).close()
    with Ledger.open(path) as ledger:  # an empty ledger gets a checkpoint at height -1
        assert ledger.store.checkpoint().height == -1 and ledger.verify().ok
    ledger = Ledger.open(path)
    ledger.append([Entry(b"first", "data", b"k")])
    ledger.append([Entry(b"second")])
    ledger.store.close()  # killed before its first checkpoint
    for mode in ("incremental", "full"):
        with Ledger.open(path, verify=mode) as again:
            assert again.store.height == 1
            report = again.verify()
            assert report.ok and report.blocks == 2, report.fault


def test_a_signed_checkpoint_at_minus_one_that_does_not_match_is_refused(tmp_path):
    path = tmp_path / "led"
    with Ledger.init(path) as ledger:
        key = ledger.keys[0]
    bad = Checkpoint.sign(key, -1, bytes(32), 3, EMPTY_ROOT, EMPTY_DIGEST)
    with Store.open(path / STORE_FILE, ledger.registry) as store:
        store._conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('checkpoint', ?)", (bad.encode(),)
        )
    with pytest.raises(TamperedStoreError) as err:
        Ledger.open(path)
    assert err.value.fault.kind == FaultKind.CHECKPOINT
    with Ledger.open(path, verify="none") as ledger:
        report = ledger.verify()
    assert not report.ok and report.fault.kind == FaultKind.CHECKPOINT
