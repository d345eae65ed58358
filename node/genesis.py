"""The shared genesis.json of a network: its validators and the flchain app_state (accounts, bonded
participants, params, initial model), edited by operators before the chain starts.

Every function takes and returns the whole document (a dict of CometBFT's JSON) and refuses what
would make a chain that cannot start, with a ValueError that says why."""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from google.protobuf import json_format

from abci_app import genesis as app_genesis
from abci_app import wire
from client import artifacts
from client.object_store import ObjectStore
from flchain.v1 import genesis_pb2, types_pb2


def read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"no genesis at {path} (run `flchain init` first)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not JSON: {err}") from None


def write(path: Path, doc: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)


def app_state(doc: dict) -> genesis_pb2.GenesisState:
    try:
        return json_format.ParseDict(doc.get("app_state") or {}, genesis_pb2.GenesisState())
    except json_format.ParseError as err:
        raise ValueError(f"app_state is not flchain's genesis state: {err}") from None


def with_app_state(doc: dict, state: genesis_pb2.GenesisState) -> dict:
    return {**doc, "app_state": app_genesis.to_app_state(state)}


def empty_app_state(params: types_pb2.Params | None = None) -> dict:
    """Params only: accounts and the initial model are added by the operators."""
    return app_genesis.to_app_state(genesis_pb2.GenesisState(params=params or app_genesis.default_params()))


def add_validator(doc: dict, validator: Mapping) -> dict:
    """Append a validator entry ({address, pub_key, power, name}, as `flchain genesis show-validator` prints)."""
    missing = {"address", "pub_key", "power"} - set(validator)
    if missing:
        raise ValueError(f"validator entry lacks {sorted(missing)}")
    if int(validator["power"]) <= 0:
        raise ValueError("validator power must be positive")
    validators = list(doc.get("validators") or [])
    for existing in validators:
        if existing["address"] == validator["address"] or existing["pub_key"] == validator["pub_key"]:
            raise ValueError(f"validator {validator['address']} ({validator.get('name', '')}) is already in genesis")
    return {**doc, "validators": [*validators, dict(validator)]}


def add_account(doc: dict, address: bytes, balance: int, bonded: int = 0) -> dict:
    """Fund an account; `bonded` > 0 also makes it a participant bonded with that stake at genesis."""
    if balance < 0 or bonded < 0:
        raise ValueError("balance and bond must not be negative")
    state = app_state(doc)
    if any(a.address == address for a in state.accounts):
        raise ValueError("the account is already in genesis")
    state.accounts.add(address=address, balance=balance)
    if bonded:
        state.participants.add(address=address, stake=bonded)
    return with_app_state(doc, state)


def set_model(doc: dict, model: Sequence[tuple[str, np.ndarray]], store: ObjectStore | None = None) -> dict:
    """The initial global model, as (name, float array) pairs, in the chain's fixed point: inline, or,
    above the genesis params' max_inline_model_bytes, stored in `store` and referenced by its digest."""
    state = app_state(doc)
    del state.model[:]
    state.ClearField("model_ref")
    size = app_genesis.model_bytes([values.shape for _, values in model])
    if size <= state.params.max_inline_model_bytes:
        state.model.extend(wire.encode_float(name, values) for name, values in model)
        return with_app_state(doc, state)
    if store is None:
        raise ValueError(
            f"the model is {size} bytes, above max_inline_model_bytes ({state.params.max_inline_model_bytes}): "
            "it goes by reference, through an object store (--store URL)"
        )
    data, ref = artifacts.model_file(model, state.params.frac_bits)
    store.put(data)
    state.model_ref.CopyFrom(ref)
    return with_app_state(doc, state)


def set_params(doc: dict, assignments: Mapping[str, int]) -> dict:
    """Change genesis params by name (the fields of flchain.v1.Params)."""
    state = app_state(doc)
    fields = state.params.DESCRIPTOR.fields_by_name
    for name, value in assignments.items():
        if name not in fields:
            raise ValueError(f"no param {name!r}; params are: {', '.join(sorted(fields))}")
        setattr(state.params, name, value)
    return with_app_state(doc, state)


def validate(doc: dict) -> None:
    """Refuse a genesis the network could not start from."""
    if not doc.get("chain_id"):
        raise ValueError("genesis has no chain_id")
    validators = doc.get("validators") or []
    if not validators:
        raise ValueError("genesis has no validators (add them with `flchain genesis add-validator`)")
    state = app_state(doc)
    if not state.model and not state.HasField("model_ref"):
        raise ValueError("genesis has no initial model (set it with `flchain genesis set-model`)")
    app_genesis.validate(state)
