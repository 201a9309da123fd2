"""The ``prosima ledger`` command group."""

from __future__ import annotations

import typer

app = typer.Typer(help="Signed blocks, a Merkle log with proofs, and their audit.", no_args_is_help=True)


@app.callback()
def _main() -> None:
    """Signed blocks, a Merkle log with proofs, and their audit."""
