"""Options shared by several commands (argparse parents), with their defaults in one place."""

import argparse
import getpass
import os
from pathlib import Path
from typing import Any

from client import endpoints
from client.keys import TEST_BACKEND, Key, KeyFileError, read_public
from experiments.config import SimConfig
from participant.behaviours import ATTACKS
from participant.ml.config import default_training

DEFAULT_KEYRING = Path.home() / ".flchain" / "keys"
DEFAULT_NODE_HOME = Path.home() / ".flchain"


def node_home() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    default = os.environ.get("FLCHAIN_HOME", str(DEFAULT_NODE_HOME))
    parser.add_argument("--home", type=Path, default=Path(default), help=f"node home (default {default}, FLCHAIN_HOME)")
    return parser


# The built-in digits models (participant.ml.models): "wide" has 10M parameters, too many for a tx,
# so its federation goes by reference through an object store (--store).
MODEL_KINDS = ("mlp", "cnn", "wide")


def genesis_model(client_spec: str | None, kind: str = "mlp"):
    """The chain's initial model: the Flower client's get_parameters, or a built-in digits model."""
    if client_spec:
        from participant.flower import genesis_model as from_client
        from participant.flower import load_factory

        return from_client(load_factory(client_spec)(0, 1))
    from participant.ml import models

    return models.initial_params(kind)


def localnet_run(out: str) -> argparse.ArgumentParser:
    """Where a command that starts its own localnet runs it, and where its report goes."""
    from localnet import config as cfg

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--validators", type=int, default=cfg.DEFAULT_VALIDATORS)
    parser.add_argument("--home", type=Path, default=cfg.DEFAULT_HOME, help="localnet data folder (wiped first)")
    parser.add_argument("--base-port", type=int, default=endpoints.BASE_PORT)
    parser.add_argument("--out", type=Path, default=Path(out), help=f"report folder (default {out})")
    parser.add_argument("--keep-running", action="store_true", help="leave the localnet up afterwards")
    return parser


def node() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    default = os.environ.get("FLCHAIN_NODE", endpoints.DEFAULT_NODE)
    parser.add_argument("--node", default=default, help=f"CometBFT RPC address (default {default}, FLCHAIN_NODE)")
    return parser


def keyring_dir() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    default = os.environ.get("FLCHAIN_KEYRING_DIR", str(DEFAULT_KEYRING))
    parser.add_argument(
        "--keyring-dir", default=default, help=f"folder of key files (default {default}, FLCHAIN_KEYRING_DIR)"
    )
    return parser


PASSPHRASE_ENV = "FLCHAIN_KEYRING_PASSPHRASE"


def passphrase(prompt: str, new: bool = False) -> str:
    """From FLCHAIN_KEYRING_PASSPHRASE, else asked on the terminal (twice for a new one)."""
    if PASSPHRASE_ENV in os.environ:
        return os.environ[PASSPHRASE_ENV]
    first = getpass.getpass(f"{prompt}: ")
    if new and getpass.getpass("repeat it: ") != first:
        raise SystemExit("the passphrases differ")
    return first


def open_key(path: Path) -> Key:
    """A key file opened, asking for its passphrase only if it is encrypted."""
    if read_public(path)["backend"] == TEST_BACKEND:
        return Key.load(path)
    try:
        return Key.load(path, passphrase(f"passphrase of {path.stem}"))
    except KeyFileError as err:
        raise SystemExit(f"error: {err}") from None


def signing_key() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False, parents=[keyring_dir()])
    parser.add_argument("--from", dest="sender", required=True, help="key name (in --keyring-dir) or key file")
    return parser


def gateway() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    default = os.environ.get("FLCHAIN_GATEWAY", endpoints.DEFAULT_GATEWAY)
    parser.add_argument(
        "--gateway", default=default, help=f"a node's gRPC gateway (default {default}, FLCHAIN_GATEWAY)"
    )
    parser.add_argument("--retry-for", type=float, default=30, help="seconds to keep retrying an unreachable gateway")
    parser.add_argument(
        "--gateway-ca",
        type=Path,
        default=os.environ.get("FLCHAIN_GATEWAY_CA"),
        help="PEM certificate(s) to verify a TLS gateway against (default FLCHAIN_GATEWAY_CA; none: plaintext)",
    )
    return parser


def gateway_client(args: argparse.Namespace):
    """The GatewayClient the --gateway options name."""
    from client.gateway_client import GatewayClient

    ca = Path(args.gateway_ca).read_bytes() if args.gateway_ca else None
    return GatewayClient(args.gateway, retry_for=args.retry_for, tls_ca=ca)


def load_key(args: argparse.Namespace) -> Key:
    """The key named by --from: a key file, or a name in --keyring-dir."""
    path = Path(args.sender)
    if not path.exists():
        path = Path(args.keyring_dir) / f"{args.sender}.json"
    if not path.exists():
        raise SystemExit(f"no key {args.sender!r} (neither a file nor in {args.keyring_dir})")
    return open_key(path)


def object_store() -> argparse.ArgumentParser:
    """Where a participant keeps updates and models federated by reference (large models)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--store",
        metavar="URL",
        default=os.environ.get("FLCHAIN_STORE_URL"),
        help="S3 endpoint of the object store, e.g. http://127.0.0.1:26706 for a localnet's (env FLCHAIN_STORE_URL; "
        "bucket FLCHAIN_STORE_BUCKET, default flchain; credentials as for any AWS client). Needed when the "
        "chain's model is federated by reference",
    )
    return parser


def store_client(args: argparse.Namespace):
    """The ObjectStore --store names, or None (boto3 is imported only when one is asked for)."""
    if not args.store:
        return None
    from client.object_store import ObjectStore

    return ObjectStore.from_env(args.store)


def federation(rounds: int) -> argparse.ArgumentParser:
    """What a simulated or demo federation is made of (see experiments.config.SimConfig)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--participants", type=int, default=20)
    parser.add_argument("--attack", choices=sorted(ATTACKS), default="sign_flip")
    parser.add_argument("--honest-votes", action="store_true", help="attackers vote truthfully (default: they lie)")
    parser.add_argument("--rounds", type=int, default=rounds, help="tallied rounds to run")
    parser.add_argument("--model", choices=MODEL_KINDS, default="mlp")
    parser.add_argument("--alpha", type=float, default=None, help="Dirichlet non-IID skew (default: IID)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def federation_config(args: argparse.Namespace, **settings: Any) -> SimConfig:
    return SimConfig(
        participants=args.participants,
        attack=args.attack,
        attackers_lie=not args.honest_votes,
        rounds=args.rounds,
        model=args.model,
        alpha=args.alpha,
        seed=args.seed,
        train=default_training(args.model),
        **settings,
    )
