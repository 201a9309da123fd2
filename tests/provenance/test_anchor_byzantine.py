"""``prosima anchor --byzantine``: images whose origin node is faulty are named, with the node and
the reason, and resubmitted through the next node (reported); without resubmission they are left
out, the exit status says so (3) unless ``--allow-partial``, and a re-run commits only them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.imaging.datasets import embedded_default_slices
from prosima.imaging.io import read_image, write_png
from prosima.ledger.log.directory import Ledger
from prosima.ledger.log.transaction import TxKind
from prosima.provenance.anchor import spread_origins
from prosima.provenance.pixels import pixel_digest
from prosima.provenance.records import AnchorRecord

runner = CliRunner()
SEED = 0
IMAGES = 6
ORIGINS = spread_origins(4, IMAGES, seed=SEED)  # [2, 1, 2, 0, 1, 2]: images 1 and 4 through node 1
FAULTY = [i for i, o in enumerate(ORIGINS) if o == 1]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("images")
    source = embedded_default_slices()
    paths = []
    for i in range(IMAGES):
        image = np.asarray(source[round((len(source) - 1) * (0.3 + 0.07 * i))].image)[::4, ::4]
        paths.append(root / f"img{i}.png")
        write_png(paths[-1], image, data_range=(0.0, 1.0))
    return paths


def cli(*args: object, code: int = 0):
    res = runner.invoke(app, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == code, res.output
    return res


def fresh(root: Path) -> Path:
    cli("ledger", "init", root, "--nodes", 4)
    return root


def signers(ledger: Path, files: list[Path]) -> dict[str, int]:
    """File name -> committee index of the node that signed its anchor (found by its pixels)."""
    names = {pixel_digest(read_image(f).array).hex(): f.name for f in files}
    with Ledger.open(ledger) as led:
        index = {nid: i for i, nid in enumerate(led.registry.members)}
        assert led.verify().ok
        out = {}
        for h in range(led.store.height + 1):
            for tx in led.store.block(h).txs:
                assert tx.kind == TxKind.IMAGE_ANCHORED
                out[names[AnchorRecord.from_payload(tx.payload).pixels]] = index[tx.signer]
        return out


def test_the_faulty_origin_s_images_are_resubmitted_through_the_next_node(tmp_path, files):
    assert FAULTY == [1, 4]
    ledger = fresh(tmp_path / "ledger")
    args = ("--origins", "spread", "--seed", SEED, "--byzantine", "silent@1", "--batch", 3)
    res = cli("anchor", *files, "--ledger", ledger, *args, "--json", tmp_path / "a.json")
    out = res.stdout
    assert "faulty: node 1 silent" in out
    for i in FAULTY:
        assert (
            f"dropped img{i}.png: origin node 1 sent no transaction batch (silent); "
            "resubmitting through node 2" in out
        )
    assert out.count("  resubmitted: origin node 1 sent no transaction batch (silent)") == 2
    assert "committed 6/6 images, 0 already anchored, 0 not committed (2 resubmitted" in out
    records = {f.name: r for f, r in zip(files, json.loads((tmp_path / "a.json").read_text()), strict=True)}
    assert [r["status"] for r in records.values()] == ["committed"] * IMAGES
    for i in FAULTY:
        assert records[f"img{i}.png"]["origin"] == 2
        assert records[f"img{i}.png"]["dropped_by"] == [
            {"origin": 1, "reason": "origin node 1 sent no transaction batch (silent)"}
        ]
    expected = {f"img{i}.png": (2 if i in FAULTY else o) for i, o in enumerate(ORIGINS)}
    assert signers(ledger, files) == expected  # nothing signed by the faulty node, each image once


def test_without_resubmission_the_dropped_images_are_named_and_the_exit_status_says_so(tmp_path, files):
    ledger = fresh(tmp_path / "ledger")
    args = ("--origins", "spread", "--seed", SEED, "--byzantine", "garbage@1", "--no-resubmit")
    res = cli("anchor", *files, "--ledger", ledger, *args, "--json", tmp_path / "a.json", code=3)
    why = "origin node 1 signed its transactions with signatures that do not verify"
    for i in FAULTY:
        assert f"not anchored img{i}.png: {why}" in res.stdout
    assert "committed 4/6 images, 0 already anchored, 2 not committed" in res.stdout
    assert "2 of 6 images were not committed" in res.stderr and "--allow-partial" in res.stderr
    assert "Traceback" not in res.output
    records = json.loads((tmp_path / "a.json").read_text())
    assert [r["status"] for r in records] == [
        "dropped" if i in FAULTY else "committed" for i in range(IMAGES)
    ]
    assert all(r["tx"] is None for r in records if r["status"] == "dropped")
    assert sorted(signers(ledger, files)) == sorted(f"img{i}.png" for i in range(IMAGES) if i not in FAULTY)
    # accepted as partial: exit 0; then an honest run commits exactly the missing ones
    res = cli("anchor", *files, "--ledger", ledger, *args, "--allow-partial")
    assert "committed 0/6 images, 4 already anchored, 2 not committed" in res.stdout
    res = cli("anchor", *files, "--ledger", ledger)
    assert "committed 2/6 images, 4 already anchored, 0 not committed" in res.stdout
    assert len(signers(ledger, files)) == IMAGES


def test_bad_fault_options_are_clear_errors(tmp_path, files):
    ledger = fresh(tmp_path / "ledger")
    for args, message in [
        (["--byzantine", "silent@1", "--consensus", "direct"], "use it with --consensus inproc"),
        (["--byzantine", "2xsilent"], "2 faulty nodes of 4 exceed what consensus tolerates"),
        (["--byzantine", "lying@1"], "unknown behaviour 'lying'"),
        (["--origins", "9"], "--origins 9: the committee has nodes 0 to 3"),
        (["--origins", "everywhere"], "--origins must be local, spread or a node index"),
        (["--origins", "spread", "--consensus", "direct"], "--origins needs a consensus committee"),
    ]:
        res = cli("anchor", files[0], "--ledger", ledger, *args, code=2)
        assert message in res.stderr and "Traceback" not in res.output, args
    with Ledger.open(ledger) as led:
        assert led.store.height == -1
