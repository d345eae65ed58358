"""Typed access to the chain state kept in a key-value overlay.

Key layout (all integers big-endian so that keys sort numerically):
  params                          Params
  acct/<addr>                     Account
  part/<addr>                     Participant
  hist/<addr><seq:8>              ParticipantEvent
  unbond/<height:8><addr>         UnbondingEntry (matures at that height)
  round                           Round (the current one)
  rounds/<id:8>                   Round (finished)
  update/<round:8><addr>          Update
  candidate                       Candidate
  model                           GlobalModel
  fp/<round:8><addr>              Fingerprint (revealed updates of recent rounds; abci_app/copies.py)
"""

import struct
from collections.abc import Iterator
from typing import TypeVar

from abci_app.store import Overlay
from flchain.v1 import types_pb2

HISTORY_SHOWN = 100
T = TypeVar("T")


def _u64(n: int) -> bytes:
    return struct.pack(">Q", n)


class State:
    def __init__(self, kv: Overlay) -> None:
        self.kv = kv

    def _get(self, key: bytes, cls: type[T]) -> T | None:
        raw = self.kv.get(key)
        return None if raw is None else cls.FromString(raw)  # type: ignore[attr-defined]

    def _must(self, key: bytes, cls: type[T]) -> T:
        """A record the rules know exists (a drawn participant, a sender that passed the account
        check, ...): its absence means corrupted state, and the node must halt, not diverge."""
        found = self._get(key, cls)
        if found is None:
            raise RuntimeError(f"state is missing {key!r}")
        return found

    def _put(self, key: bytes, message) -> None:
        # Deterministic serialization: same message, same bytes, same app hash everywhere.
        self.kv.set(key, message.SerializeToString(deterministic=True))

    # --- params, model, candidate, round ---------------------------------------------------
    def params(self) -> types_pb2.Params:
        return self._must(b"params", types_pb2.Params)

    def has_genesis(self) -> bool:
        return self.kv.get(b"params") is not None

    def set_params(self, params: types_pb2.Params) -> None:
        self._put(b"params", params)

    def model(self) -> types_pb2.GlobalModel:
        return self._must(b"model", types_pb2.GlobalModel)

    def set_model(self, model: types_pb2.GlobalModel) -> None:
        self._put(b"model", model)

    def candidate(self) -> types_pb2.Candidate | None:
        return self._get(b"candidate", types_pb2.Candidate)

    def set_candidate(self, candidate: types_pb2.Candidate | None) -> None:
        if candidate is None:
            self.kv.delete(b"candidate")
        else:
            self._put(b"candidate", candidate)

    def round(self) -> types_pb2.Round:
        return self._must(b"round", types_pb2.Round)

    def set_round(self, rnd: types_pb2.Round) -> None:
        self._put(b"round", rnd)

    def archive_round(self, rnd: types_pb2.Round) -> None:
        self._put(b"rounds/" + _u64(rnd.id), rnd)

    def round_by_id(self, round_id: int) -> types_pb2.Round | None:
        current = self.round()
        if current.id == round_id:
            return current
        return self._get(b"rounds/" + _u64(round_id), types_pb2.Round)

    # --- accounts and participants -----------------------------------------------------------
    def account(self, address: bytes) -> types_pb2.Account | None:
        return self._get(b"acct/" + address, types_pb2.Account)

    def must_account(self, address: bytes) -> types_pb2.Account:
        return self._must(b"acct/" + address, types_pb2.Account)

    def set_account(self, account: types_pb2.Account) -> None:
        self._put(b"acct/" + account.address, account)

    def participant(self, address: bytes) -> types_pb2.Participant | None:
        return self._get(b"part/" + address, types_pb2.Participant)

    def must_participant(self, address: bytes) -> types_pb2.Participant:
        return self._must(b"part/" + address, types_pb2.Participant)

    def set_participant(self, participant: types_pb2.Participant) -> None:
        self._put(b"part/" + participant.address, participant)

    def participants(self) -> Iterator[types_pb2.Participant]:
        """All participants, ordered by address."""
        for _, raw in self.kv.items(b"part/"):
            yield types_pb2.Participant.FromString(raw)

    def record_event(self, participant: types_pb2.Participant, event: types_pb2.ParticipantEvent) -> None:
        """Append to the participant's history; the caller stores the participant afterwards."""
        self._put(b"hist/" + participant.address + _u64(participant.history_length), event)
        participant.history_length += 1

    def history(self, address: bytes, participant: types_pb2.Participant) -> list[types_pb2.ParticipantEvent]:
        first = max(0, participant.history_length - HISTORY_SHOWN)
        return [
            self._must(b"hist/" + address + _u64(seq), types_pb2.ParticipantEvent)
            for seq in range(first, participant.history_length)
        ]

    # --- unbonding queue ---------------------------------------------------------------------
    def add_unbonding(self, address: bytes, amount: int, completion_height: int) -> None:
        key = b"unbond/" + _u64(completion_height) + address
        entry = self._get(key, types_pb2.UnbondingEntry) or types_pb2.UnbondingEntry(
            address=address, completion_height=completion_height
        )
        entry.amount += amount
        self._put(key, entry)

    def unbondings(self) -> Iterator[tuple[bytes, types_pb2.UnbondingEntry]]:
        """(key, entry) ordered by completion height, then address."""
        for key, raw in self.kv.items(b"unbond/"):
            yield key, types_pb2.UnbondingEntry.FromString(raw)

    # --- norms of recent updates (abci_app/norm_bound.py) --------------------------------------
    def norm_history(self) -> types_pb2.NormHistory:
        return self._get(b"norms", types_pb2.NormHistory) or types_pb2.NormHistory()

    def set_norm_history(self, history: types_pb2.NormHistory) -> None:
        self._put(b"norms", history)

    # --- sample counts recent updates claimed (abci_app/sample_bound.py) --------------------------
    def sample_history(self) -> types_pb2.SampleHistory:
        return self._get(b"claims", types_pb2.SampleHistory) or types_pb2.SampleHistory()

    def set_sample_history(self, history: types_pb2.SampleHistory) -> None:
        self._put(b"claims", history)

    # --- fingerprints of recent rounds' updates (abci_app/copies.py) -----------------------------
    def fingerprints(self) -> list[types_pb2.Fingerprint]:
        """Oldest round first, then by proposer."""
        return [types_pb2.Fingerprint.FromString(raw) for _, raw in self.kv.items(b"fp/")]

    def set_fingerprint(self, fingerprint: types_pb2.Fingerprint) -> None:
        self._put(b"fp/" + _u64(fingerprint.round) + fingerprint.proposer, fingerprint)

    def forget_fingerprint(self, round_id: int, proposer: bytes) -> None:
        self.kv.delete(b"fp/" + _u64(round_id) + proposer)

    def forget_fingerprints_before(self, round_id: int) -> None:
        for key, _ in list(self.kv.items(b"fp/")):
            if struct.unpack(">Q", key[3:11])[0] >= round_id:
                break
            self.kv.delete(key)

    # --- updates of the current round --------------------------------------------------------
    def must_update(self, round_id: int, proposer: bytes) -> types_pb2.Update:
        return self._must(b"update/" + _u64(round_id) + proposer, types_pb2.Update)

    def set_update(self, update: types_pb2.Update) -> None:
        self._put(b"update/" + _u64(update.round) + update.proposer, update)

    def delete_updates(self, round_id: int) -> None:
        for key, _ in list(self.kv.items(b"update/" + _u64(round_id))):
            self.kv.delete(key)
