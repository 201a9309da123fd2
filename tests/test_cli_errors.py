"""Errors become exit codes by class (1 a negative verdict, 2 refused input) and, with ``--json -``,
a JSON document on standard output; ``--json FILE`` is never written on an error; ``--quiet`` drops
progress lines only."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.cli.errors import exit_code, report
from prosima.cli.output import Output
from prosima.errors import InputError, NegativeVerdict, Refused
from prosima.imaging.validation import ImageError
from prosima.ledger.errors import LedgerError, TamperedStoreError
from prosima.provenance.matching import NoConfidentMatch

runner = CliRunner()


class _Fault:
    def __str__(self) -> str:
        return "missing block at height 1"

    def to_json(self) -> dict[str, object]:
        return {"kind": "missing block", "height": 1}


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InputError("x"), 2),
        (ImageError("x"), 2),
        (LedgerError("x"), 2),
        (FileNotFoundError(2, "No such file or directory", "x.png"), 2),
        (ValueError("x"), 2),
        (NegativeVerdict("x"), 1),
        (Refused("x"), 1),
        (NoConfidentMatch("x"), 1),
        (TamperedStoreError(_Fault()), 1),
        (sqlite3.DatabaseError("x"), 1),
    ],
)
def test_exit_codes_by_class(error, code):
    assert exit_code(error) == code


def test_a_report_on_standard_output_is_json_with_the_error_details(capsys):
    exit_ = report(TamperedStoreError(_Fault()), Path("-"))
    assert exit_.exit_code == 1
    assert json.loads(capsys.readouterr().out) == {
        "ok": False,
        "error": "store refused: missing block at height 1",
        "fault": {"kind": "missing block", "height": 1},
    }
    report(NoConfidentMatch("no confident match"))
    assert capsys.readouterr().err == "refused: no confident match\n"


def test_json_dash_prints_the_error_and_json_file_is_not_written(tmp_path):
    missing = tmp_path / "missing.png"
    res = runner.invoke(app, ["data", "info", str(missing), "--json", "-"])
    assert res.exit_code == 2 and res.stderr == ""
    assert json.loads(res.stdout) == {"ok": False, "error": f"{missing}: no such file or folder"}
    res = runner.invoke(app, ["data", "info", str(missing), "--json", str(tmp_path / "info.json")])
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and res.stdout == ""
    assert not (tmp_path / "info.json").exists()


def test_quiet_drops_info_lines_and_json_dash_replaces_the_text(capsys):
    quiet = Output(quiet=True)
    quiet.info("progress")
    quiet.result("result")
    assert capsys.readouterr().out == "result\n"
    to_stdout = Output(Path("-"))
    to_stdout.info("progress")
    to_stdout.result("result")
    to_stdout.json({"ok": True, "value": float("nan")})
    assert json.loads(capsys.readouterr().out) == {"ok": True, "value": None}
