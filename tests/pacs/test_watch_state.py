"""The watcher's position in an archive's feed: kept per archive, replaced whole, a damaged file
refused with a way out, and one watcher at a time per ledger."""

from __future__ import annotations

import json

import pytest

from prosima.pacs.watch_state import (
    STATE_FILE,
    WatchStateError,
    read_position,
    state_path,
    watch_lock,
    write_position,
)

A, B = "http://127.0.0.1:8042", "http://127.0.0.1:9042"


def test_positions_are_kept_per_archive(tmp_path):
    assert read_position(tmp_path, A) == 0
    write_position(tmp_path, A, 12)
    write_position(tmp_path, B, 3)
    write_position(tmp_path, A, 20)
    assert (read_position(tmp_path, A), read_position(tmp_path, B)) == (20, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE]  # nothing half-written beside it
    assert json.loads(state_path(tmp_path).read_text()) == {"archives": {A: 20, B: 3}, "version": 1}


@pytest.mark.parametrize(
    "text",
    ["{not json", "[]", '{"version": 2, "archives": {}}', '{"version": 1, "archives": {"x": -1}}',
     '{"version": 1, "archives": {"x": true}}', '{"version": 1}'],
)  # fmt: skip
def test_a_damaged_state_file_is_refused_with_a_way_out(tmp_path, text):
    state_path(tmp_path).write_text(text)
    with pytest.raises(WatchStateError, match=r"remove it to start over|not a change number"):
        read_position(tmp_path, A)


def test_one_watcher_at_a_time(tmp_path):
    with watch_lock(tmp_path), pytest.raises(WatchStateError, match="another watcher"), watch_lock(tmp_path):
        pass
    with watch_lock(tmp_path):  # released
        pass
