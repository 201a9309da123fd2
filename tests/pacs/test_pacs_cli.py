"""``prosima pacs`` refuses what it cannot use with a message naming the problem (exit 2), before
any work: no archive named, a login given twice or kept in a file others can read, an instance that
is neither an Orthanc id nor a SOP Instance UID, an archive that does not answer."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.ledger.log.directory import Ledger
from prosima.pacs.orthanc_server import free_port

runner = CliRunner()
INSTANCE = "7ad4f805-420f4ec2-18e0deef-65589b3d-7627b078"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "ledger"
    Ledger.init(path, nodes=4).close()
    return path


def pacs(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["pacs", *args], env=env or {})


def test_an_archive_must_be_named(ledger):
    res = pacs("watch", "--ledger", str(ledger), "--once")
    assert res.exit_code == 2 and "--orthanc URL: which archive?" in res.output


def test_json_goes_with_once(ledger):
    res = pacs("watch", "--ledger", str(ledger), "--orthanc", "http://127.0.0.1:1", "--json", "-")
    assert res.exit_code == 2 and "use it with --once" in res.output


def test_a_login_is_given_one_way(ledger, tmp_path):
    creds = tmp_path / "login.json"
    creds.write_text(json.dumps({"url": "http://127.0.0.1:1", "user": "u", "password": "p"}))
    creds.chmod(0o600)
    res = pacs("verify", INSTANCE, "--ledger", str(ledger), "--credentials", str(creds), "--user", "u")
    assert res.exit_code == 2 and "not both" in res.output
    creds.chmod(0o644)
    res = pacs("verify", INSTANCE, "--ledger", str(ledger), "--credentials", str(creds))
    assert res.exit_code == 2 and "chmod 600" in res.output
    creds.chmod(0o600)
    creds.write_text(json.dumps({"url": "http://127.0.0.1:1", "user": "u"}))
    res = pacs("verify", INSTANCE, "--ledger", str(ledger), "--credentials", str(creds))
    assert res.exit_code == 2 and "both 'user' and 'password'" in res.output


def test_an_instance_must_be_an_orthanc_id_or_a_uid(ledger):
    res = pacs("verify", "John^Doe", "--ledger", str(ledger), "--orthanc", "http://127.0.0.1:1")
    assert res.exit_code == 2 and "neither an Orthanc instance id" in res.output


def test_an_archive_that_does_not_answer_is_named(ledger):
    url = f"http://127.0.0.1:{free_port()}"
    env = {"PROSIMA_ORTHANC_PASSWORD": "p"}
    for args in (["verify", INSTANCE], ["restore", INSTANCE], ["watch", "--once"]):
        res = pacs(*args, "--ledger", str(ledger), "--orthanc", url, "--user", "u", env=env)
        assert res.exit_code == 2, res.output
        assert f"cannot reach Orthanc at {url}" in res.output and "Traceback" not in res.output


def test_errors_as_json(ledger):
    res = pacs("verify", INSTANCE, "--ledger", str(ledger), "--orthanc", "ftp://x", "--json", "-")
    assert res.exit_code == 2
    assert json.loads(res.stdout) == {
        "ok": False,
        "error": "--orthanc 'ftp://x': give the archive's REST URL, e.g. http://127.0.0.1:8042",
    }
