"""`flchain keys`: keys encrypted at rest by default, listed without their passphrase, shown,
exported and imported, deleted; a clear-text test backend for localnets."""

import argparse
import json

import pytest

from cli import options
from cli.main import main as flchain
from client.keys import Key, KeyFileError, KeyLocked

SECRET = "correct horse battery staple"


@pytest.fixture
def keyring(tmp_path, monkeypatch):
    monkeypatch.setenv(options.PASSPHRASE_ENV, SECRET)
    return tmp_path / "keys"


def keys(keyring, *args):
    return flchain(["keys", *args, "--keyring-dir", str(keyring)])


def test_a_new_key_is_encrypted_at_rest(keyring, capsys):
    assert keys(keyring, "add", "alice") == 0
    address = capsys.readouterr().out.split("\t")[1]
    stored = json.loads((keyring / "alice.json").read_text())
    assert stored["backend"] == "file" and "private_key" not in stored
    assert stored["encrypted_private_key"].startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert (keyring / "alice.json").stat().st_mode & 0o777 == 0o600
    with pytest.raises(KeyLocked):
        Key.load(keyring / "alice.json")
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        Key.load(keyring / "alice.json", "guess")
    assert Key.load(keyring / "alice.json", SECRET).bech32 == address
    with pytest.raises(SystemExit, match="already exists"):
        keys(keyring, "add", "alice")


def test_list_and_show_need_no_passphrase(keyring, capsys, monkeypatch):
    keys(keyring, "add", "alice")
    keys(keyring, "add", "bob", "--keyring-backend", "test")
    capsys.readouterr()
    monkeypatch.delenv(options.PASSPHRASE_ENV)
    assert keys(keyring, "list", "-o", "json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(k["name"], k["backend"]) for k in listed] == [("alice", "file"), ("bob", "test")]
    assert keys(keyring, "show", "bob") == 0
    name, address, public_key, backend = capsys.readouterr().out.strip().split("\t")
    assert (name, address, backend) == ("bob", listed[1]["address"], "test") and len(public_key) == 64


def test_export_import_and_delete(keyring, tmp_path, capsys):
    keys(keyring, "add", "alice")
    address = capsys.readouterr().out.split("\t")[1]
    assert keys(keyring, "export", "alice") == 0
    exported = tmp_path / "alice.export.json"
    exported.write_text(capsys.readouterr().out)
    assert "private_key" not in json.loads(exported.read_text())  # encrypted in transit too
    assert keys(keyring, "import", "alice2", str(exported), "--keyring-backend", "test") == 0
    assert Key.load(keyring / "alice2.json").bech32 == address
    assert keys(keyring, "delete", "alice2", "--yes") == 0
    assert not (keyring / "alice2.json").exists()
    with pytest.raises(SystemExit, match="no key 'alice2'"):
        keys(keyring, "delete", "alice2", "--yes")


def test_signing_with_an_encrypted_key_asks_its_passphrase(keyring, monkeypatch, capsys):
    keys(keyring, "add", "alice")
    address = capsys.readouterr().out.split("\t")[1]
    args = argparse.Namespace(sender="alice", keyring_dir=str(keyring))
    assert options.load_key(args).bech32 == address
    monkeypatch.setenv(options.PASSPHRASE_ENV, "guess")
    with pytest.raises(SystemExit, match="wrong passphrase for key 'alice'"):
        options.load_key(args)
