"""How every benchmark shows what it measured: rich tables from rows, the JSON document, figures,
progress on the console, and the one tail that writes the files and says where they are."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prosima.bench.progress import Progress


@dataclass(frozen=True)
class Rows:
    """A table to print: its title, column headers and rows of cells (a ``None`` row ends a section)."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str] | None]
    justify: str = "right"


# what a benchmark hands the console: a table, or a line of text (rich markup allowed)
Block = Rows | str


@dataclass(frozen=True)
class FigureFile:
    """A figure to save: where, the function that draws it, and the dpi (``None``: the figure's own)."""

    path: Path
    draw: Callable[[], Any]
    dpi: float | None = None


def make_console(width: int | None = None, *, off_terminal: int | None = None) -> Any:
    """A rich console ``width`` wide (``off_terminal`` wide when stdout is not a terminal)."""
    from rich.console import Console

    if off_terminal is not None and not sys.stdout.isatty():
        width = off_terminal
    return Console(width=width)


def rich_table(rows: Rows) -> Any:
    """``rows`` as a rich table."""
    from rich.table import Table

    table = Table(title=rows.title)
    for column in rows.columns:
        table.add_column(column, justify=rows.justify)  # type: ignore[arg-type]
    for cells in rows.rows:
        if cells is None:
            table.add_section()
        else:
            table.add_row(*cells)
    return table


def show(console: Any, blocks: Iterable[Block]) -> None:
    """Print every table and line in order."""
    for block in blocks:
        console.print(rich_table(block) if isinstance(block, Rows) else block)


def write_json(document: Mapping[str, Any], path: str | Path) -> None:
    """Write ``document`` as indented JSON, creating the folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(document, indent=2))


def pyplot() -> Any:
    """``matplotlib.pyplot`` drawing off screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: float | None = None) -> None:
    """Save ``fig`` as ``path`` (creating the folder) and close it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if dpi is None:
        fig.savefig(path)
    else:
        fig.savefig(path, dpi=dpi)
    pyplot().close(fig)


def figure_beside(json_path: str | Path | None, name: str | None = None) -> Path | None:
    """The PNG beside a JSON file (``STEM-name.png`` when named); ``None`` without one."""
    if json_path is None:
        return None
    path = Path(json_path)
    if name is None:
        return path.with_suffix(".png")
    stem = path.with_suffix("")
    return stem.parent / f"{stem.name}-{name}.png"


def publish(
    console: Any,
    document: Mapping[str, Any],
    json_path: str | Path | None,
    figures: Sequence[FigureFile] = (),
) -> None:
    """The tail of every benchmark: write the JSON document, save the figures, say where each went."""
    if json_path is not None:
        write_json(document, json_path)
        console.print(f"wrote {json_path}")
    for figure in figures:
        save_figure(figure.draw(), figure.path, figure.dpi)
        console.print(f"wrote {figure.path}")


class ConsoleProgress:
    """Progress on a console: a transient bar per task (when ``bar``) and every note printed."""

    def __init__(self, console: Any, live: Any) -> None:
        self._console = console
        self._live = live
        self._tasks: dict[str, Any] = {}

    def advance(self, task: str, total: int) -> None:
        """One more step of ``task``; its bar goes once it is complete."""
        if task not in self._tasks:
            self._tasks[task] = self._live.add_task(task, total=total)
        task_id = self._tasks[task]
        self._live.advance(task_id)
        if next(t for t in self._live.tasks if t.id == task_id).finished:
            self._live.remove_task(self._tasks.pop(task))

    def note(self, message: str) -> None:
        """Print ``message``."""
        self._console.print(message)


@contextmanager
def console_progress(console: Any, bar: bool = True) -> Iterator[Progress]:
    """A ``ConsoleProgress`` on ``console`` for the length of the ``with`` block."""
    from rich.progress import Progress as Bars

    with Bars(console=console, disable=not bar, transient=True) as live:
        yield ConsoleProgress(console, live)
