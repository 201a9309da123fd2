"""The shared renderer (tables from rows, the JSON and figure tail, console progress) and a
benchmark's ``measure`` that prints nothing and reports its progress through the callback."""

from __future__ import annotations

import json

from rich.console import Console
from rich.progress import Progress

from prosima.bench import denoise
from prosima.bench.render import (
    ConsoleProgress,
    FigureFile,
    Rows,
    console_progress,
    figure_beside,
    publish,
    pyplot,
    show,
)


def _figure():
    fig, ax = pyplot().subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    return fig


def test_show_prints_tables_with_sections_and_lines():
    console = Console(record=True, width=80)
    rows = Rows("Title here", ("name", "value"), [("a", "1"), None, ("b", "22")])
    show(console, [rows, "a line after"])
    text = console.export_text()
    assert "Title here" in text and "name" in text and "value" in text
    assert text.index("a") < text.index("22") < text.index("a line after")
    assert "├" in text  # the section break between the rows


def test_publish_writes_the_json_and_figures_and_says_where(tmp_path):
    console = Console(record=True, width=200)
    json_path = tmp_path / "deep" / "bench.json"
    figures = [FigureFile(figure_beside(json_path, name), _figure, 50) for name in ("one", "two")]
    publish(console, {"a": [1, 2]}, json_path, figures)
    assert json.loads(json_path.read_text()) == {"a": [1, 2]}
    assert [f.path.name for f in figures] == ["bench-one.png", "bench-two.png"]
    assert all(f.path.stat().st_size > 1000 for f in figures)
    lines = console.export_text().splitlines()
    assert lines == [f"wrote {json_path}", *(f"wrote {f.path}" for f in figures)]
    assert figure_beside(json_path) == tmp_path / "deep" / "bench.png"
    assert figure_beside(None) is None


def test_publish_without_paths_writes_and_prints_nothing(tmp_path):
    console = Console(record=True)
    publish(console, {"a": 1}, None)
    assert console.export_text() == "" and not list(tmp_path.iterdir())


def test_console_progress_drops_finished_bars_and_prints_notes():
    console = Console(record=True, width=80)
    with Progress(console=console, disable=True) as live:
        progress = ConsoleProgress(console, live)
        progress.advance("work", 2)
        progress.note("halfway")
        progress.advance("work", 2)
        progress.advance("more", 3)
        assert [t.description for t in live.tasks] == ["more"]
    assert "halfway" in console.export_text()
    with console_progress(console, bar=False) as progress:
        progress.note("through the context")
    assert "through the context" in console.export_text()


class _Recorder:
    def __init__(self) -> None:
        self.steps: list[tuple[str, int]] = []
        self.notes: list[str] = []

    def advance(self, task: str, total: int) -> None:
        self.steps.append((task, total))

    def note(self, message: str) -> None:
        self.notes.append(message)


def test_measure_prints_nothing_and_reports_every_step(capsys):
    recorder = _Recorder()
    config = denoise.DenoiseConfig(methods=("noisy", "tv"), sigmas=(0.05,), max_slices=2)
    result = denoise.measure(config, recorder)
    assert capsys.readouterr().out == ""
    assert recorder.steps == [("denoising", 4)] * 4
    assert {(r["method"], r["sigma"]) for r in result.document["results"]} == {("noisy", 0.05), ("tv", 0.05)}
    assert set(result.example[0.05]) == {"clean", "noisy", "tv"} and result.methods == ("noisy", "tv")
    blocks = denoise.report(result)
    assert isinstance(blocks[0], Rows) and len(blocks[0].rows) == 2
