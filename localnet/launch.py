"""The flchain flavour of a Localnet: each node runs the flchain app and a gateway beside CometBFT,
and the genesis funds a set of participant keys kept in the localnet's folder. A model above the
chain's inline limit is federated by reference: the localnet then runs an object store beside the
nodes, and genesis holds the digest of the initial model's file in it."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from abci_app import genesis
from abci_app.genesis import to_app_state
from client import artifacts, endpoints
from client.object_store import ObjectStore
from flchain.v1 import types_pb2
from localnet import config as cfg
from localnet.genesis import localnet_genesis, participant_keys
from localnet.net import Localnet, LocalnetError
from node import processes
from node.home import NodeHome

DEFAULT_PARTICIPANTS = 8


def app_command(index: int, node_home: Path, ports: endpoints.NodePorts) -> list[str]:
    """Node i's flchain app, as `flchain start` runs it from the node's home."""
    return processes.app_argv(NodeHome(node_home))


def gateway_command(index: int, node_home: Path) -> list[str]:
    """Node i's participant gateway (gRPC), as `flchain start` runs it from the node's home."""
    return processes.gateway_argv(NodeHome(node_home))


def keys_dir(home: Path) -> Path:
    return home / "keys"


def start(
    home: Path = cfg.DEFAULT_HOME,
    validators: int = cfg.DEFAULT_VALIDATORS,
    participants: int = DEFAULT_PARTICIPANTS,
    bonded_at_genesis: int = 0,
    base_port: int = endpoints.BASE_PORT,
    fresh: bool = False,
    params: types_pb2.Params | None = None,
    model: Sequence[tuple[str, np.ndarray]] | None = None,
    store: bool = False,
    **init_options,
) -> Localnet:
    """Create the localnet if needed (participant keys, genesis, node configs), then start it.

    model: the initial global model as (name, float array) pairs; needed only to create one.
    store: run the object store (SeaweedFS) too; a model above params.max_inline_model_bytes needs it."""
    net = Localnet(home, validators=validators, base_port=base_port)
    model_file = None
    if fresh or not any(home.glob("node[0-9]*")):
        if model is None:
            raise LocalnetError(f"no localnet in {home} yet: creating one needs an initial model")
        params = params or genesis.default_params()
        initial: Sequence[tuple[str, np.ndarray]] | types_pb2.BlobRef = model
        size = genesis.model_bytes([values.shape for _, values in model])
        if size > params.max_inline_model_bytes:
            if not store:
                raise LocalnetError(
                    f"the model is {size / 2**20:.1f} MiB, above max_inline_model_bytes "
                    f"({params.max_inline_model_bytes / 2**20:.1f} MiB): it goes by reference, "
                    "through an object store (--store)"
                )
            model_file, initial = artifacts.model_file(model, params.frac_bits)
        keys = participant_keys(keys_dir(home), participants)
        app_state = to_app_state(localnet_genesis(keys, initial, params, bonded_at_genesis))
        net.init(app_state, force=fresh, **init_options)
    net.up(app_command, gateway_command=gateway_command, store=store)
    if model_file is not None:  # its digest is in genesis; participants fetch it from the store
        ObjectStore(net.store().url).put(model_file)
    return net
