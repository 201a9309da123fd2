"""A node key file damaged by one byte is refused with a ``NodeKeyFileError`` naming the file, whatever the
PEM parser makes of it (bad base64, unknown algorithm, invalid key bytes, another key type), and the
commands that open the ledger print that error cleanly: no traceback."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from prosima.cli import app
from prosima.imaging.io import write_png
from prosima.ledger.errors import NodeKeyFileError
from prosima.ledger.log.crypto import NodeKey

runner = CliRunner()
BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
ALGORITHM_OID = range(12, 17)  # the base64 characters holding Ed25519's OID 1.3.101.112 in PKCS#8


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "led"
    assert invoke("ledger", "init", path, "--nodes", 4).exit_code == 0
    return path


def damaged(pem: bytes, i: int, rng: random.Random) -> bytes:
    """``pem`` with base64 character ``i`` of its body replaced by another one."""
    head, body, *rest = pem.split(b"\n")
    flipped = bytearray(body)
    flipped[i] = rng.choice([c for c in BASE64 if c != body[i]])
    return b"\n".join([head, bytes(flipped), *rest])


def positions(pem: bytes, seed: int = 0) -> list[int]:
    """Seeded positions in the body, and every position of the algorithm identifier."""
    body = pem.split(b"\n")[1]
    return sorted(set(random.Random(seed).sample(range(len(body)), 12)) | set(ALGORITHM_OID))


def test_every_damaged_key_is_a_key_file_error_or_another_key(ledger, tmp_path):
    original = sorted((ledger / "keys").iterdir())[0]
    refused, rng, pem = 0, random.Random(1), original.read_bytes()
    for i in positions(pem):
        path = tmp_path / f"flip-{i}.key"
        path.write_bytes(damaged(pem, i, rng))
        path.chmod(0o600)
        try:
            key = NodeKey.load(path)
        except NodeKeyFileError as exc:
            refused += 1
            assert f"key file {path} " in str(exc) and "\n" not in str(exc)
        else:  # a flip inside the private seed is another valid key: the registry refuses it
            assert key.node_id != NodeKey.load(original).node_id
    assert refused >= len(ALGORITHM_OID)


@pytest.mark.parametrize("i", [*ALGORITHM_OID, 40, 60])
def test_commands_print_a_damaged_key_cleanly(ledger, tmp_path, i):
    key = sorted((ledger / "keys").iterdir())[0]
    good = key.read_bytes()
    pem = damaged(good, i, random.Random(i))
    image = tmp_path / "a.png"
    write_png(image, np.zeros((32, 32), np.float32))
    key.write_bytes(pem)
    try:
        for args in (("ledger", "verify", "-d", ledger), ("verify", image, "--ledger", ledger)):
            res = invoke(*args)
            assert res.exit_code == 2, res.output
            assert isinstance(res.exception, SystemExit), repr(res.exception)
            assert "Traceback" not in res.output and res.output.startswith("error: "), res.output
            assert "key file" in res.output and key.name in res.output, res.output
    finally:
        key.write_bytes(good)
    assert invoke("ledger", "verify", "-d", ledger).exit_code == 0
