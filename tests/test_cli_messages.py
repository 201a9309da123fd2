"""What people read: a version, decoded ledger payloads with ISO 8601 times, a non-proof refused as
bad input, and error messages that name files and options, never internal functions."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from prosima.cli import app

runner = CliRunner()


def run(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and r.stdout.startswith("prosima ")


def test_ledger_show_decodes_payloads_and_prints_iso_times(tmp_path):
    import cbor2

    led = tmp_path / "led"
    assert run("ledger", "init", led).exit_code == 0
    record = tmp_path / "rec.bin"
    record.write_bytes(cbor2.dumps({"format": "demo", "digest": b"\x01\x02"}, canonical=True))
    assert run("ledger", "append", "-d", led, record).exit_code == 0
    r = run("ledger", "show", "-d", led)
    assert r.exit_code == 0 and '"digest": "0102"' in r.stdout and "+00:00" in r.stdout
    data = json.loads(run("ledger", "show", "-d", led, "--json", "-").stdout)
    tx = data["transactions"][0]
    assert tx["payload_decoded"] == {"format": "demo", "digest": "0102"}
    assert tx["time_iso"].endswith("+00:00") and data["header"]["time_iso"].startswith("20")


def test_check_proof_on_a_file_that_is_not_a_proof_is_bad_input(tmp_path):
    for text in ("hello", "[1, 2]", '{"type": "something else"}'):
        path = tmp_path / "not-a-proof.json"
        path.write_text(text)
        r = run("ledger", "check-proof", path)
        assert r.exit_code == 2 and "is not a proof document" in r.output


def test_read_errors_name_no_internal_function(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "folder").mkdir()
    for target in (tmp_path / "objects.npy", tmp_path / "folder"):
        r = run("data", "info", target)
        assert r.exit_code != 0 or "error" not in r.output
        for internal in ("read_dicom_series", "pickle", "Traceback"):
            assert internal not in r.output, (target, r.output)
