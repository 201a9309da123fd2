"""The archive client treats every answer as hostile: a local HTTP server that answers as told (too
much, not JSON, the wrong shape, identifiers that are not Orthanc's, slowly, refusing) is met with
an error naming the problem, never a traceback or a file left behind."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from prosima.pacs.instances import InstanceRefError, resolve_instance
from prosima.pacs.orthanc_client import OrthancClient, OrthancError, OrthancNotFound, check_uid
from prosima.pacs.orthanc_server import free_port

INSTANCE = "7ad4f805-420f4ec2-18e0deef-65589b3d-7627b078"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    length: int | None = None  # a Content-Length to claim (default: the body's)
    delay: float = 0.0


@dataclass
class Hostile:
    """A local HTTP server answering each path with what ``answers`` says."""

    url: str
    answers: dict[str, Answer] = field(default_factory=dict)
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def answer(self, path: str, body: object, **kw: object) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers[path] = Answer(body=data, **kw)  # type: ignore[arg-type]


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server: Hostile

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            server.seen.append((self.command, self.path, dict(self.headers)))
            a = server.answers.get(self.path, Answer(404, b'{"Message": "Unknown resource"}'))
            time.sleep(a.delay)
            self.send_response(a.status)
            self.send_header("Content-Length", str(len(a.body) if a.length is None else a.length))
            self.end_headers()
            with contextlib.suppress(OSError):  # a client that gave up
                self.wfile.write(a.body)

        do_GET = do_POST = _reply

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server = Hostile(f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()


def client(h: Hostile, **kw: object) -> OrthancClient:
    return OrthancClient(h.url, "user", "secret", **kw)  # type: ignore[arg-type]


def refused(call: Callable[[], object], match: str, kind: type[Exception] = OrthancError) -> None:
    with pytest.raises(kind, match=match):
        call()


def test_a_well_formed_feed_is_read_with_basic_authentication(hostile):
    hostile.answer(
        "/changes?since=0&limit=10",
        {
            "Changes": [
                {"Seq": 1, "ChangeType": "NewInstance", "ResourceType": "Instance", "ID": INSTANCE},
                {"Seq": 2, "ChangeType": "NewSeries", "ResourceType": "Series", "ID": INSTANCE},
            ],
            "Done": True,
            "Last": 2,
        },
    )
    page = client(hostile).changes(0, 10)
    assert [c.seq for c in page.changes] == [1, 2] and page.done and page.last == 2
    assert hostile.seen[-1][2]["Authorization"] == "Basic dXNlcjpzZWNyZXQ="


def change(seq: object, **kw: object) -> dict[str, object]:
    return {"Seq": seq, "ChangeType": "NewInstance", "ResourceType": "Instance", "ID": INSTANCE} | kw


def feed(changes: list[object], last: object = 1) -> dict[str, object]:
    return {"Changes": changes, "Done": True, "Last": last}


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html>not json</html>", "is not JSON"),
        ([], "is not an object"),
        ({"Changes": [], "Done": True}, "no valid 'Last'"),
        (feed([{"Seq": "1"}]), "no valid 'Seq'"),
        (feed([change(True)]), "no valid 'Seq'"),
        (feed([change(1, ID=None)]), "no valid 'ID'"),
        (feed(["x"]), "not an object"),
        (feed([change(2), change(1)], 2), "out of order"),
        (feed([change(1), change(1)], 1), "out of order"),
        (feed([change(0)], 0), "out of order"),
        (feed([change(5)], 3), "out of order"),
    ],
)
def test_a_feed_of_the_wrong_shape_is_refused(hostile, body, match):
    hostile.answer("/changes?since=0&limit=10", body)
    refused(lambda: client(hostile).changes(0, 10), match)


def test_more_changes_than_asked_are_refused(hostile):
    item = {"ChangeType": "NewInstance", "ResourceType": "Instance", "ID": INSTANCE}
    hostile.answer(
        "/changes?since=0&limit=1", {"Changes": [item | {"Seq": 1}, item | {"Seq": 2}], "Done": 1, "Last": 2}
    )
    refused(lambda: client(hostile).changes(0, 1), "more than the 1 asked")


def test_answers_over_the_limit_are_refused_whatever_they_claim(hostile):
    hostile.answer("/system", {"Version": "1.10.1", "pad": "x" * 5000})
    refused(lambda: client(hostile, max_json_bytes=1000).system(), "over the 1000")
    hostile.answer("/system", {"Version": "1.10.1", "pad": "x" * 5000}, length=10**12)
    refused(lambda: client(hostile).system(), "is 1000000000000 bytes")


def test_an_instance_file_over_the_limit_leaves_no_file(hostile, tmp_path):
    hostile.answer(f"/instances/{INSTANCE}/file", b"\0" * 50_000)
    out = tmp_path / "x.dcm"
    refused(lambda: client(hostile, max_instance_bytes=10_000).instance_file(INSTANCE, out), "over the 10000")
    assert not out.exists()
    assert client(hostile).instance_file(INSTANCE, out).stat().st_size == 50_000


def test_identifiers_that_are_not_orthancs_never_reach_a_url(hostile, tmp_path):
    c = client(hostile)
    refused(lambda: c.instance_file("../../tools/reset", tmp_path / "x"), "not of Orthanc's form")
    refused(lambda: c.instance_tags("7ad4f805"), "not of Orthanc's form")
    hostile.answer("/tools/lookup", [{"Type": "Instance", "ID": "../../../etc/passwd", "Path": "/x"}])
    refused(lambda: c.find_instance("1.2.3.4"), "the id Orthanc gave .* not of Orthanc's form")
    hostile.answer("/instances", {"ID": "not-an-id", "Status": "Success"})
    dicom = tmp_path / "a.dcm"
    dicom.write_bytes(b"DICM")
    refused(lambda: c.upload(dicom), "the id Orthanc gave the stored file")
    assert [s[1] for s in hostile.seen] == ["/tools/lookup", "/instances"]


def test_lookup_of_a_sop_uid(hostile):
    c = client(hostile)
    hostile.answer("/tools/lookup", [{"Type": "Series", "ID": INSTANCE}])
    refused(lambda: c.find_instance("1.2.3.4"), "no instance with this SOP Instance UID", OrthancNotFound)
    hostile.answer("/tools/lookup", [{"Type": "Instance", "ID": INSTANCE}] * 2)
    refused(lambda: c.find_instance("1.2.3.4"), "several instances")
    hostile.answer("/tools/lookup", [{"Type": "Instance", "ID": INSTANCE}])
    assert c.find_instance("1.2.3.4 ") == INSTANCE
    assert resolve_instance(c, "1.2.3.4") == INSTANCE and resolve_instance(c, INSTANCE) == INSTANCE
    with pytest.raises(InstanceRefError, match=r"neither an Orthanc instance id .* nor a SOP Instance UID"):
        resolve_instance(c, "patient 42")
    with pytest.raises(InstanceRefError, match="at most 64 characters"):  # a bad ref, not an archive fault
        resolve_instance(c, "1." * 40 + "1")
    refused(lambda: check_uid("1.2.03"), "not a DICOM UID")
    refused(lambda: check_uid("1." * 40 + "1"), "not a DICOM UID")


def test_http_refusals_are_named(hostile):
    for status, match, kind in (
        (401, "refused the credentials", OrthancError),
        (403, "forbade", OrthancError),
        (404, "no such resource", OrthancNotFound),
        (500, "HTTP 500: boom", OrthancError),
    ):
        hostile.answers["/system"] = Answer(status, b'{"Message": "boom"}')
        refused(lambda: client(hostile).system(), match, kind)
    hostile.answer("/system", {"Name": "not orthanc"})
    refused(lambda: client(hostile).system(), "not as Orthanc does")


def test_an_archive_that_is_slow_or_absent_is_named(hostile):
    hostile.answers["/system"] = Answer(body=b'{"Version": "1"}', delay=1.5)
    refused(lambda: client(hostile, timeout=0.3).system(), "did not answer|cannot reach")
    refused(lambda: OrthancClient(f"http://127.0.0.1:{free_port()}").system(), "cannot reach Orthanc")


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ftp://127.0.0.1:8042", "REST URL"),
        ("127.0.0.1:8042", "REST URL"),
        ("http://admin:pw@127.0.0.1:8042", "not in the URL"),
        ("http://127.0.0.1:8042/?x=1", "no query"),
    ],
)
def test_a_bad_archive_url_is_refused(url, match):
    refused(lambda: OrthancClient(url), match)


def test_a_user_without_password_is_refused():
    refused(lambda: OrthancClient("http://127.0.0.1:8042", "user"), "both a user and a password")


def test_the_password_is_not_in_the_clients_repr():
    assert "secret" not in repr(OrthancClient("http://127.0.0.1:8042", "user", "secret"))


def test_nothing_is_written_for_a_refused_download(hostile, tmp_path: Path):
    out = tmp_path / "gone.dcm"
    refused(lambda: client(hostile).instance_file(INSTANCE, out), "no such resource", OrthancNotFound)
    assert not out.exists()
