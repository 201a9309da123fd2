"""API tokens: made by the command line and shown once, kept only as SHA-256 hashes in a file of
mode 0600, refused when the file is open to others; revoked tokens stop working at once."""

from __future__ import annotations

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from prosima.cli import app as cli
from prosima.service.app import create_app
from prosima.service.settings import ServiceSettings
from prosima.service.tokens import TokensFileError, TokenStore, token_hash

runner = CliRunner()


def test_create_list_revoke(tmp_path):
    tokens = tmp_path / "conf" / "tokens.json"
    made = runner.invoke(cli, ["serve", "token", "create", "--tokens", str(tokens), "--name", "pacs bridge"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("prosima_") and len(token) > 40
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    text = tokens.read_text()
    assert token not in text and token_hash(token) in text  # only the hash is kept
    store = TokenStore.load(tokens)
    (entry,) = store.entries
    assert entry.name == "pacs bridge" and store.authorizes(token) == entry
    assert store.authorizes(token + "x") is None and store.authorizes("") is None
    listed = runner.invoke(cli, ["serve", "token", "list", "--tokens", str(tokens)])
    assert entry.id in listed.stdout and token not in listed.stdout and entry.sha256 not in listed.stdout
    revoked = runner.invoke(cli, ["serve", "token", "revoke", "--tokens", str(tokens), entry.id])
    assert revoked.exit_code == 0 and TokenStore.load(tokens).entries == ()
    again = runner.invoke(cli, ["serve", "token", "revoke", "--tokens", str(tokens), entry.id])
    assert again.exit_code == 2 and "no token with id" in again.output


def test_a_tokens_file_open_to_others_or_malformed_is_refused(tmp_path):
    tokens = tmp_path / "tokens.json"
    TokenStore.open_or_empty(tokens).with_new_token("x")[0].save()
    os.chmod(tokens, 0o644)
    with pytest.raises(TokensFileError, match="mode 0644; it must be 0600"):
        create_app(ServiceSettings(tmp_path, tokens=tokens))
    os.chmod(tokens, 0o600)
    tokens.write_text(json.dumps({"format": "prosima-tokens/1", "tokens": [{"id": "a"}]}))
    with pytest.raises(TokensFileError, match="text fields"):
        TokenStore.load(tokens)
    with pytest.raises(TokensFileError, match="no tokens file"):
        create_app(ServiceSettings(tmp_path, tokens=tmp_path / "missing.json"))


def test_a_token_made_or_revoked_while_serving_counts_at_once(served):
    store, token = TokenStore.load(served.tokens).with_new_token("late")
    store.save()
    headers = {"Authorization": f"Bearer {token}"}
    files = {"files": ("x.png", b"junk")}
    assert served.client.post("/v1/anchor", files=files, headers=headers).status_code == 422  # authorized
    store.without(store.entries[-1].id).save()
    assert served.client.post("/v1/anchor", files=files, headers=headers).status_code == 401
