"""``prosima verify`` against pinned node keys and a kept tree head: a rewritten ledger, a rollback
and an edited index cannot make an image verify."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.imaging.io import read_image, write_png
from prosima.ledger.log.directory import Entry, Ledger
from prosima.provenance.pixels import pixel_digest

runner = CliRunner()


def verify(*args, env=None):
    return runner.invoke(app, ["verify", *map(str, args)], env=env)


@pytest.fixture
def closed_world(fresh_world):
    w = fresh_world(2)
    w.ledger.close()  # writes the checkpoint; the CLI opens the directory itself
    return w


def test_pinned_registry_refuses_a_ledger_with_other_keys(closed_world, tmp_path):
    w = closed_world
    image = w.files[0]
    assert (
        verify(image, "--ledger", w.ledger_dir, "--registry", w.ledger_dir / "registry.cbor").exit_code == 0
    )
    with Ledger.init(tmp_path / "rewritten", nodes=4):
        pass
    pinned = tmp_path / "rewritten" / "registry.cbor"
    r = verify(image, "--ledger", w.ledger_dir, "--registry", pinned)
    assert r.exit_code == 2 and "not the pinned one" in r.output and "Traceback" not in r.output
    r = verify(image, "--ledger", w.ledger_dir, env={"PROSIMA_TRUSTED_REGISTRY": str(pinned)})
    assert r.exit_code == 2 and "not the pinned one" in r.output


def test_a_kept_tree_head_exposes_a_rollback(closed_world, tmp_path):
    w = closed_world
    kept = tmp_path / "head.json"
    with Ledger.open(w.ledger_dir) as ledger:
        ledger.append([Entry(b"a later record")])
    assert runner.invoke(app, ["ledger", "head", "-d", str(w.ledger_dir), "-o", str(kept)]).exit_code == 0
    assert verify(w.files[0], "--ledger", w.ledger_dir, "--since", kept).exit_code == 0
    with sqlite3.connect(w.ledger_dir / "ledger.db") as conn:  # the tail block and the checkpoint
        top = conn.execute("SELECT max(height) FROM blocks").fetchone()[0]
        conn.execute("DELETE FROM txs WHERE height = ?", (top,))
        conn.execute("DELETE FROM blocks WHERE height = ?", (top,))
        conn.execute("DELETE FROM meta WHERE key = 'checkpoint'")
    assert verify(w.files[0], "--ledger", w.ledger_dir).exit_code == 0  # invisible without the head
    r = verify(w.files[0], "--ledger", w.ledger_dir, "--since", kept)
    assert r.exit_code == 1 and "rolled back" in r.output


def test_an_edited_key_index_never_verifies_another_image(closed_world, tmp_path):
    w = closed_world
    other = tmp_path / "other.png"
    write_png(other, np.linspace(0, 1, 64 * 64).reshape(64, 64), data_range=(0.0, 1.0))
    forged = pixel_digest(read_image(other).array)
    with sqlite3.connect(w.ledger_dir / "ledger.db") as conn:
        conn.execute("UPDATE txs SET key = ? WHERE seq = 0", (forged,))
    r = verify(other, "--ledger", w.ledger_dir)
    assert r.exit_code != 0 and "VERIFIED EXACT" not in r.output and "Traceback" not in r.output
