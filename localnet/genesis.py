"""The localnet's genesis: funded participant keys and a seeded initial model for the digits MLP."""
from pathlib import Path

import numpy as np

from abci_app import genesis
from client.keys import Key
from flchain.v1 import genesis_pb2, types_pb2

# The model the demo federation trains: an MLP on scikit-learn's 8x8 digits (64 -> 32 -> 10),
# named as torch names the parameters of Linear layers.
DIGITS_MLP = [("fc1.weight", (32, 64)), ("fc1.bias", (32,)), ("fc2.weight", (10, 32)), ("fc2.bias", (10,))]
PARTICIPANT_BALANCE = 100_000


def initial_model(shapes=DIGITS_MLP, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), torch's default for Linear, from a fixed seed."""
    rng = np.random.default_rng(seed)
    model = []
    for name, shape in shapes:
        fan_in = shape[1] if len(shape) > 1 else dict(shapes)[name.replace("bias", "weight")][1]
        bound = 1 / np.sqrt(fan_in)
        model.append((name, rng.uniform(-bound, bound, shape).astype(np.float32)))
    return model


def participant_keys(keys_dir: Path, count: int) -> list[Key]:
    """Load participant-NN keys from keys_dir, creating the missing ones."""
    keys = []
    for i in range(count):
        path = keys_dir / f"participant-{i:02d}.json"
        if not path.exists():
            Key.generate(f"participant-{i:02d}").save(path)
        keys.append(Key.load(path))
    return keys


def localnet_genesis(keys: list[Key], params: types_pb2.Params | None = None, bonded_at_genesis: int = 0,
                     model: list[tuple[str, np.ndarray]] | None = None) -> genesis_pb2.GenesisState:
    """Every key funded; the first `bonded_at_genesis` of them bonded with the standard bond.
    model None: the digits MLP from initial_model()."""
    return genesis.build({k.address: PARTICIPANT_BALANCE for k in keys},
                         {k.address: genesis.STANDARD_BOND for k in keys[:bonded_at_genesis]},
                         model if model is not None else initial_model(), params or genesis.default_params())
