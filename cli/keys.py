"""`flchain keys add|list`: ed25519 keys as files in a keyring folder."""

import argparse
import sys
from pathlib import Path

from cli import options
from client.keys import Key


def cmd_keys(args: argparse.Namespace) -> int:
    folder = Path(args.keyring_dir)
    if args.action == "add":
        path = folder / f"{args.name}.json"
        if path.exists():
            print(f"key {args.name!r} already exists at {path}", file=sys.stderr)
            return 1
        key = Key.generate(args.name)
        key.save(path)
        print(f"{args.name}\t{key.bech32}\t(saved to {path})")
    else:
        for path in sorted(folder.glob("*.json")):
            key = Key.load(path)
            print(f"{key.name}\t{key.bech32}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    k = sub.add_parser("keys", help="manage keys")
    ksub = k.add_subparsers(dest="action", required=True)
    ksub.add_parser("add", parents=[options.keyring_dir()]).add_argument("name")
    ksub.add_parser("list", parents=[options.keyring_dir()])
    k.set_defaults(func=cmd_keys)
