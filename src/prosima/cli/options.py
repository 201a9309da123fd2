"""The options every command spells the same way: ``--ledger``, ``--json PATH``, ``--quiet``, and
the others several commands share (``--registry``, ``--consensus``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from prosima.app.ledger_access import TRUSTED_REGISTRY_ENV
from prosima.cli.errors import JSON_TARGET, prints_json

LEDGER_ENV = "PROSIMA_LEDGER_DIR"


def _remember_json_target(ctx: typer.Context, value: Path | None) -> Path | None:
    """Keep the ``--json`` target where the error report finds it (``-``: errors as JSON too)."""
    ctx.meta[JSON_TARGET] = value
    return value


def _refuse_stdout(value: Path | None) -> Path | None:
    if prints_json(value):
        raise typer.BadParameter("benchmarks write their JSON (figures beside it) to a file; give a path")
    return value


LedgerOption = Annotated[
    Path,
    typer.Option(
        "--ledger",
        "-d",
        envvar=LEDGER_ENV,
        help="Ledger directory (made by 'prosima ledger init').",
    ),
]
OptionalLedgerOption = Annotated[
    Path | None,
    typer.Option("--ledger", "-d", help="Ledger directory to commit to / check against (default: none)."),
]
JsonOption = Annotated[
    Path | None,
    typer.Option(
        "--json",
        help="Write the result as JSON to this file; '-': print it instead of the text.",
        callback=_remember_json_target,
    ),
]
BenchJsonOption = Annotated[
    Path | None,
    typer.Option(
        "--json", help="Write the results as JSON to this file (figures beside it).", callback=_refuse_stdout
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print no progress or info lines (results and errors still).")
]
TrustedRegistryOption = Annotated[
    Path | None,
    typer.Option(
        "--registry",
        envvar=TRUSTED_REGISTRY_ENV,
        help="Trust only the node keys in this pinned copy of registry.cbor (kept apart from the ledger).",
    ),
]
ConsensusOption = Annotated[
    str,
    typer.Option(
        "--consensus",
        help="How records are committed: inproc (the ledger's nodes run consensus here), mpi, direct.",
    ),
]
