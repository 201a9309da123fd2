"""How every command group is made: help on no arguments, errors reported by ``cli.errors``."""

from __future__ import annotations

import typer

from prosima.cli.errors import ReportingGroup


def command_group(help: str, *, name: str | None = None) -> typer.Typer:
    """A new group of commands whose errors become messages and exit codes, never tracebacks."""
    return typer.Typer(name=name, help=help, no_args_is_help=True, add_completion=False, cls=ReportingGroup)
