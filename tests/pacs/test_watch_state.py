"""The watcher's position in an archive's feed: kept per archive (under its id when it has one, so
a private archive restarted on new ports is followed from where it was), replaced whole, a damaged
file refused with a way out, a position beyond a wiped archive's feed followed from the start, and
one watcher at a time per ledger."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from typer.testing import CliRunner

from prosima.app.session import Session
from prosima.cli import app
from prosima.ledger.log.directory import Ledger
from prosima.pacs.archive_id import ARCHIVE_ID_FILE, ArchiveIdError, archive_id, archive_id_path
from prosima.pacs.credentials import CREDENTIALS_FILE, write_credentials
from prosima.pacs.orthanc_client import ChangesPage, OrthancClient
from prosima.pacs.orthanc_server import OrthancServer, start_orthanc
from prosima.pacs.watch_state import (
    STATE_FILE,
    WatchStateError,
    archive_key,
    read_position,
    state_path,
    watch_lock,
    write_position,
)
from prosima.pacs.watcher import ArchiveWatcher

A, B = "http://127.0.0.1:8042", "http://127.0.0.1:9042"
runner = CliRunner()


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


def test_an_archive_with_an_id_is_kept_under_its_id_and_one_without_under_its_url(tmp_path):
    ident = "0b9a2c1e-8d4f-4e55-9c1a-3f6e2d7b8a90"
    assert archive_key(A) == A and archive_key(A, ident) == f"urn:uuid:{ident}"
    write_position(tmp_path, archive_key(A, ident), 7)
    assert read_position(tmp_path, archive_key(B, ident)) == 7  # the same archive on other ports
    assert read_position(tmp_path, A) == 0


def test_a_state_file_of_urls_only_is_read_as_it_is(tmp_path):
    state_path(tmp_path).write_text(json.dumps({"version": 1, "archives": {A: 5}}))
    assert read_position(tmp_path, A) == 5
    write_position(tmp_path, archive_key(B, "0b9a2c1e-8d4f-4e55-9c1a-3f6e2d7b8a90"), 2)
    assert read_position(tmp_path, A) == 5


def test_an_archive_id_is_made_once_and_read_back(tmp_path):
    storage = tmp_path / "storage"
    first = archive_id(storage)
    assert str(uuid.UUID(first)) == first and archive_id(storage) == first
    assert sorted(p.name for p in storage.iterdir()) == [ARCHIVE_ID_FILE]  # nothing half-written beside it
    assert archive_id(tmp_path / "other") != first


def test_an_archive_id_made_by_another_start_first_is_kept(tmp_path, monkeypatch):
    path = archive_id_path(tmp_path)
    real_link = os.link

    def raced(src, dst):  # another start links its id in between the check and the link
        path.write_text("0b9a2c1e-8d4f-4e55-9c1a-3f6e2d7b8a90\n")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", raced)
    assert archive_id(tmp_path) == "0b9a2c1e-8d4f-4e55-9c1a-3f6e2d7b8a90"
    assert sorted(p.name for p in tmp_path.iterdir()) == [ARCHIVE_ID_FILE]


@pytest.mark.parametrize("text", ["", "not an id\n", "0B9A2C1E8D4F4E559C1A3F6E2D7B8A90", "\xff"])
def test_a_damaged_archive_id_is_refused_with_a_way_out(tmp_path, text):
    archive_id_path(tmp_path).write_text(text, encoding="latin-1")
    with pytest.raises(ArchiveIdError, match="remove it to give the archive a new id"):
        archive_id(tmp_path)


class _Feed:
    """A changes feed without instances that ends at ``newest`` (what a wiped archive answers)."""

    def __init__(self, newest: int) -> None:
        self.url, self.archive_id, self.newest, self.since = A, None, newest, []

    def last_change(self) -> int:
        return self.newest

    def changes(self, since: int, limit: int) -> ChangesPage:
        self.since.append(since)
        return ChangesPage([], True, self.newest)


class _Session:
    def __init__(self, ledger) -> None:
        self.ledger = ledger

    def refresh(self) -> None:
        pass


def test_a_position_beyond_the_feeds_end_is_followed_from_the_start_and_said_once(tmp_path):
    write_position(tmp_path, A, 40)
    feed = _Feed(0)
    first = ArchiveWatcher(_Session(tmp_path), feed).poll()  # type: ignore[arg-type]
    assert feed.since == [0] and first.start == 40 and "followed from its start" in first.note
    assert read_position(tmp_path, A) == 0
    again = ArchiveWatcher(_Session(tmp_path), feed).poll()  # type: ignore[arg-type]
    assert again.note is None and again.start == 0


class _CountingClient(OrthancClient):
    """A client that records the position of every page of the feed it reads."""

    pages: list[int]

    def changes(self, since: int = 0, limit: int = 100) -> ChangesPage:
        self.pages.append(since)
        return super().changes(since, limit)


def _counting(server: OrthancServer) -> _CountingClient:
    c = server.client()
    client = _CountingClient(c.url, c.user, c.password, archive_id=c.archive_id)
    client.pages = []
    return client


def test_a_restarted_private_archive_is_followed_from_its_saved_position(
    orthanc_binary, dicom_slices, tmp_path
):
    ledger, folder = tmp_path / "ledger", tmp_path / "archive"
    Ledger.init(ledger, nodes=4).close()
    server = start_orthanc(folder)
    try:
        client = _counting(server)
        for path in dicom_slices[:2]:
            client.upload(path)
        with Session.open(ledger, "direct") as session:
            first = ArchiveWatcher(session, client).poll()
        assert first.count("committed") == 2 and first.last > 0
    finally:
        server.stop()
    ident, old_url = server.archive_id, server.url

    server = start_orthanc(folder)  # new ports, the same storage
    try:
        assert server.archive_id == ident and server.url != old_url
        client = _counting(server)
        with Session.open(ledger, "direct") as session:
            resumed = ArchiveWatcher(session, client).poll()
        assert resumed.start == first.last and client.pages == [first.last]  # nothing read again
        client.upload(dicom_slices[2])
        login = write_credentials(folder / CREDENTIALS_FILE, server.login())  # as the service writes it
        res = runner.invoke(
            app,
            ["pacs", "watch", "--once", "--json", "-", "--ledger", str(ledger), "--credentials", str(login)],
        )
    finally:
        server.stop()
    assert res.exit_code == 0, res.output
    again = json.loads(res.stdout)
    assert again["since"] == first.last and again["archive"] == server.url
    assert [e["outcome"] for e in again["instances"]] == ["committed"]  # only the instance stored since
    assert read_position(ledger, archive_key(server.url, ident)) == again["last"] > first.last
    assert read_position(ledger, old_url) == read_position(ledger, server.url) == 0  # not under a URL
