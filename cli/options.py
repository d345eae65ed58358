"""Options shared by several commands (argparse parents), with their defaults in one place."""

import argparse
from pathlib import Path

from client import endpoints
from client.keys import Key

DEFAULT_KEYRING = Path.home() / ".flchain" / "keys"


def node() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--node", default=endpoints.DEFAULT_NODE, help=f"CometBFT RPC address (default {endpoints.DEFAULT_NODE})"
    )
    return parser


def keyring_dir() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--keyring-dir", default=str(DEFAULT_KEYRING), help="folder of key files")
    return parser


def signing_key() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False, parents=[keyring_dir()])
    parser.add_argument("--from", dest="sender", required=True, help="key name (in --keyring-dir) or key file")
    return parser


def gateway() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--gateway",
        default=endpoints.DEFAULT_GATEWAY,
        help=f"a node's gRPC gateway (default {endpoints.DEFAULT_GATEWAY})",
    )
    parser.add_argument("--retry-for", type=float, default=30, help="seconds to keep retrying an unreachable gateway")
    return parser


def load_key(args: argparse.Namespace) -> Key:
    """The key named by --from: a key file, or a name in --keyring-dir."""
    path = Path(args.sender)
    if not path.exists():
        path = Path(args.keyring_dir) / f"{args.sender}.json"
    if not path.exists():
        raise SystemExit(f"no key {args.sender!r} (neither a file nor in {args.keyring_dir})")
    return Key.load(path)
