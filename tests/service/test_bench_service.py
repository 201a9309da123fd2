"""``bench service``'s table: each operation against its aim, the consensus wall time and critical
path the service reported beside the client's time; the warm-up request is not counted."""

from __future__ import annotations

import pytest

from prosima.bench.render import Rows
from prosima.bench.service import AIMS_MS, ServiceBenchConfig, _timed, report


def _rows(ms: list[float], commit: bool) -> list[tuple[float, dict]]:
    return [
        (m / 1e3, {"commit": {"wall_ms": m / 2, "critical_path_ms": m / 8}} if commit else {}) for m in ms
    ]


def test_the_table_against_the_aims():
    results = {
        "verify": _timed(_rows([500.0, 20.0, 25.0, 30.0], commit=False)),  # the 500 ms warm-up is dropped
        "anchor": _timed(_rows([900.0, 80.0, 100.0, 120.0], commit=True)),
        "restore": _timed(_rows([900.0, 140.0, 150.0, 160.0], commit=True)),
        "anchor_batched": {
            "median_ms": 50.0,
            "p95_ms": 50.0,
            "n": 16,
            "commit_wall_ms": 300.0,
            "critical_path_ms": 40.0,
        },
        "anchor_concurrent": {
            "median_ms": 30.0,
            "p95_ms": 30.0,
            "n": 32,
            "clients": 8,
            "request_median_ms": 210.0,
            "request_p95_ms": 260.0,
            "slices_per_round": 6.4,
            "commit_wall": {"median_ms": 90.0, "p95_ms": 95.0, "n": 32},
            "critical_path": {"median_ms": 9.0, "p95_ms": 10.0, "n": 32},
        },
    }
    assert results["verify"]["median_ms"] == pytest.approx(25.0) and results["verify"]["n"] == 3
    assert results["anchor"]["critical_path"]["median_ms"] == pytest.approx(12.5)
    document = {
        "config": {"nodes": 20, "threads": 2},
        "environment": {"cpus": 2},
        "ready_seconds": 7.0,
        "aims_ms": AIMS_MS,
        "results": results,
    }
    table, note, together = report(document)
    assert isinstance(table, Rows) and "20 nodes, 2 CPUs" in table.title
    rows = {r[0]: r for r in table.rows if r is not None}
    assert rows["verify an anchored 256x256 slice"][-1] == "yes"
    assert rows["anchor one slice (one round per request)"][-1] == "no"
    assert rows["anchor, per slice of a batched request"][-2:] == ["<= 60", "yes"]
    restore = rows["restore + record"]
    assert restore[2:] == ["150.0", "160.0", "75.0", "18.8", "<= 150", "yes"]
    assert rows["anchor, per slice, one-slice requests at once"][2:] == [
        "30.0",
        "30.0",
        "90.0",
        "9.0",
        "<= 60",
        "yes",
    ]
    assert "ready 7.0 s" in note
    assert "6.4 slices per round" in together and "210 ms median" in together
    del results["anchor_concurrent"]  # a document from before that row: the table still renders
    assert len(report(document)) == 2


def test_the_concurrency_options_are_checked():
    with pytest.raises(ValueError, match="--clients"):
        ServiceBenchConfig(clients=0)


def test_a_config_that_measures_nothing_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        ServiceBenchConfig(repeats=0)
