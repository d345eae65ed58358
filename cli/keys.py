"""`flchain keys add|list|show|delete|export|import`: ed25519 keys as files in a keyring folder,
encrypted with a passphrase unless the test backend (clear text, for localnets) is asked for.

A passphrase comes from FLCHAIN_KEYRING_PASSPHRASE when set (scripts, CI), else from a prompt."""

import argparse
import json
import sys
from pathlib import Path

from cli import options
from client.keys import FILE_BACKEND, TEST_BACKEND, Key, KeyFileError, read_public


def _path(args: argparse.Namespace, name: str) -> Path:
    return Path(args.keyring_dir) / f"{name}.json"


def _existing(args: argparse.Namespace, name: str) -> Path:
    path = _path(args, name)
    if not path.exists():
        raise SystemExit(f"no key {name!r} in {args.keyring_dir}")
    return path


def _new(args: argparse.Namespace, name: str) -> Path:
    path = _path(args, name)
    if path.exists():
        raise SystemExit(f"key {name!r} already exists at {path}")
    return path


def _store(args: argparse.Namespace, key: Key, path: Path) -> None:
    passphrase = (
        None if args.keyring_backend == TEST_BACKEND else options.passphrase(f"passphrase for {key.name}", new=True)
    )
    key.save(path, passphrase)


def _print(args: argparse.Namespace, rows: list[dict]) -> None:
    if args.output == "json":
        print(json.dumps(rows if args.action == "list" else rows[0], indent=2))
        return
    for row in rows:
        print(
            f"{row['name']}\t{row['address']}"
            + (f"\t{row['public_key']}\t{row['backend']}" if args.action == "show" else "")
        )


def cmd_keys(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except KeyFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.action == "add":
        path = _new(args, args.name)
        key = Key.generate(args.name)
        _store(args, key, path)
        print(f"{args.name}\t{key.bech32}\t(saved to {path}, {args.keyring_backend} backend)")
    elif args.action == "list":
        _print(args, [read_public(p) for p in sorted(Path(args.keyring_dir).glob("*.json"))])
    elif args.action == "show":
        _print(args, [read_public(_existing(args, args.name))])
    elif args.action == "delete":
        path = _existing(args, args.name)
        if not args.yes and input(f"delete key {args.name!r} ({read_public(path)['address']})? [y/N] ") != "y":
            print("kept")
            return 1
        path.unlink()
        print(f"deleted key {args.name!r}")
    elif args.action == "export":
        key = options.open_key(_existing(args, args.name))
        print(json.dumps(key.to_json(options.passphrase(f"passphrase to encrypt the export of {key.name}", new=True))))
    else:  # import
        data = json.loads(Path(args.file).read_text())
        key = Key.from_json({**data, "name": args.name}, options.passphrase(f"passphrase of {args.file}"))
        _store(args, key, _new(args, args.name))
        print(f"{args.name}\t{key.bech32}\t(imported into {args.keyring_dir}, {args.keyring_backend} backend)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    k = sub.add_parser("keys", help="manage keys")
    ksub = k.add_subparsers(dest="action", required=True)
    keyring = [options.keyring_dir()]
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument(
        "--keyring-backend",
        choices=[FILE_BACKEND, TEST_BACKEND],
        default=FILE_BACKEND,
        help="file: encrypted with a passphrase (default); test: in clear, for localnets and tests only",
    )
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("-o", "--output", choices=["text", "json"], default="text")
    ksub.add_parser("add", parents=[*keyring, backend], help="a new key").add_argument("name")
    ksub.add_parser("list", parents=[*keyring, output], help="every key: name and address")
    ksub.add_parser("show", parents=[*keyring, output], help="one key's address and public key").add_argument("name")
    delete = ksub.add_parser("delete", parents=keyring, help="remove a key file")
    delete.add_argument("name")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    ksub.add_parser("export", parents=keyring, help="print a key, encrypted with a passphrase").add_argument("name")
    imp = ksub.add_parser("import", parents=[*keyring, backend], help="add a key from an export")
    imp.add_argument("name")
    imp.add_argument("file", help="what `flchain keys export` printed")
    k.set_defaults(func=cmd_keys)
