"""What a command prints and writes: progress and info lines (silenced by ``--quiet``), progress
bars (on a terminal only), result lines and tables, warnings, and its JSON document (``--json
FILE``, or ``--json -`` for standard output, which then replaces the text)."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from prosima.cli.errors import prints_json


def jsonable(obj: Any) -> Any:
    """``obj`` with non-finite floats as ``None`` (JSON has no NaN or infinity)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


def write_json_file(obj: Any, path: Path, *, sort_keys: bool = False) -> None:
    """Write ``obj`` as indented JSON to ``path`` (its folder made), atomically: an interrupted
    write leaves the previous file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(jsonable(obj), indent=2, sort_keys=sort_keys) + "\n")
    os.replace(tmp, path)


@dataclass(frozen=True)
class Output:
    """One command's output. ``json_target``: its ``--json`` value; ``sort_keys``: how its JSON is
    written (the ledger's documents sort their keys)."""

    json_target: Path | None = None
    quiet: bool = False
    sort_keys: bool = False

    @property
    def json_on_stdout(self) -> bool:
        return prints_json(self.json_target)

    def info(self, line: str) -> None:
        """A progress or info line: not with ``--quiet``, nor when the JSON goes to standard output."""
        if not self.quiet and not self.json_on_stdout:
            typer.echo(line)  # click flushes after every line

    def result(self, line: str, *, err: bool = False) -> None:
        """A result line (``err``: on standard error), unless the JSON replaces the text."""
        if not self.json_on_stdout:
            typer.echo(line, err=err)

    @contextmanager
    def progress(self) -> Iterator[Any]:
        """Rich progress bars on standard error (``add_task``, ``advance``, ``remove_task``),
        removed when done; shown only on a terminal, not with ``--quiet`` nor ``--json -``."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        shown = not self.quiet and not self.json_on_stdout and sys.stderr.isatty()
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=Console(stderr=True), disable=not shown, transient=True) as bars:
            yield bars

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A result table (plain text off a terminal), unless the JSON replaces the text."""
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        terminal = sys.stdout.isatty()
        width = shutil.get_terminal_size().columns if terminal else 160
        text = io.StringIO()
        Console(file=text, width=width, force_terminal=terminal, no_color=not terminal).print(table)
        self.result("\n".join(line.rstrip() for line in text.getvalue().rstrip("\n").split("\n")))

    def warn(self, line: str) -> None:
        """A warning or note on standard error, always."""
        typer.secho(line, fg=typer.colors.YELLOW, err=True)

    def json(self, obj: Any) -> None:
        """The command's JSON document, to the ``--json`` file or standard output (none: nothing)."""
        if self.json_on_stdout:
            typer.echo(json.dumps(jsonable(obj), indent=2, sort_keys=self.sort_keys))
        elif self.json_target is not None:
            write_json_file(obj, self.json_target, sort_keys=self.sort_keys)

    def json_progress(self, obj: Any) -> None:
        """The document so far, rewritten whole into the ``--json`` file (standard output gets only
        the final document)."""
        if self.json_target is not None and not self.json_on_stdout:
            write_json_file(obj, self.json_target, sort_keys=self.sort_keys)
