"""The one place where an error becomes what the command line says and its exit status.

By class: a ``NegativeVerdict`` (the check ran and said no) exits 1, ``InputError`` (refused input)
exits 2; ``Refused`` is introduced as ``refused:``, every other error as ``error:``, on standard
error. With ``--json -`` the error is a JSON document on standard output instead (``{"ok": false,
"error": ..., **details}``); with ``--json FILE`` nothing is written: an error writes no result.

Errors from outside prosima that name bad input the same way are mapped too: an unreadable file
(``OSError``) or value (``ValueError``, ``KeyError``) exits 2, a corrupt SQLite store exits 1.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from prosima.errors import NegativeVerdict, ProsimaError, Refused

JSON_TARGET = "prosima.json_target"  # ctx.meta key: the running command's --json value
STDOUT = "-"
REPORTED = (ProsimaError, ValueError, KeyError, OSError, sqlite3.Error)


def prints_json(target: Path | None) -> bool:
    """Whether ``--json`` sends the document to standard output (``-``)."""
    return target is not None and str(target) == STDOUT


def exit_code(exc: BaseException) -> int:
    """1 for a negative verdict (a corrupt store included), 2 for refused input."""
    return 1 if isinstance(exc, NegativeVerdict | sqlite3.Error) else 2


def message(exc: BaseException) -> str:
    """The error's message, naming the problem."""
    if isinstance(exc, sqlite3.Error):
        return f"the store is corrupt or unreadable: {exc}"
    if isinstance(exc, OSError) and not isinstance(exc, ProsimaError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename or ''}".rstrip(": ")
    return str(exc)


def details(exc: BaseException) -> dict[str, Any]:
    """What the error's JSON document carries beside its message."""
    return exc.details() if isinstance(exc, ProsimaError) else {}


def report(exc: BaseException, json_target: Path | None = None) -> typer.Exit:
    """Say what went wrong (on standard error, or as JSON with ``--json -``) and return the exit."""
    text = message(exc)
    if prints_json(json_target):
        document = {"ok": False, "error": text} | details(exc)
        typer.echo(json.dumps(document, indent=2, sort_keys=True))
    else:
        label = "refused" if isinstance(exc, Refused) else "error"
        typer.secho(f"{label}: {text}", fg=typer.colors.RED, err=True)
    return typer.Exit(exit_code(exc))


class ReportingGroup(TyperGroup):
    """A command group whose commands' errors are reported by ``report``, never as a traceback."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]  # typer passes its Context
        try:
            return super().invoke(ctx)
        except REPORTED as exc:
            raise report(exc, ctx.meta.get(JSON_TARGET)) from None
