"""The localnet's genesis: funded participant keys (created on first use) and a given initial model."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from abci_app import genesis
from client.keys import Key
from flchain.v1 import genesis_pb2, types_pb2

PARTICIPANT_BALANCE = 100_000


def participant_keys(keys_dir: Path, count: int) -> list[Key]:
    """Load participant-NN keys from keys_dir, creating the missing ones."""
    keys = []
    for i in range(count):
        path = keys_dir / f"participant-{i:02d}.json"
        if not path.exists():
            Key.generate(f"participant-{i:02d}").save(path)
        keys.append(Key.load(path))
    return keys


def localnet_genesis(
    keys: list[Key],
    model: Sequence[tuple[str, np.ndarray]] | types_pb2.BlobRef,
    params: types_pb2.Params | None = None,
    bonded_at_genesis: int = 0,
) -> genesis_pb2.GenesisState:
    """Every key funded; the first `bonded_at_genesis` of them bonded with the standard bond."""
    return genesis.build(
        {k.address: PARTICIPANT_BALANCE for k in keys},
        {k.address: genesis.STANDARD_BOND for k in keys[:bonded_at_genesis]},
        model,
        params or genesis.default_params(),
    )
