"""ABCI Query paths over committed state; every answer is a protobuf message (see proto/query.proto)."""

from dataclasses import dataclass

from abci_app import query_paths as qp
from abci_app.address import from_bech32
from abci_app.codes import Code
from abci_app.state import State
from flchain.v1 import query_pb2, types_pb2


@dataclass
class QueryAnswer:
    code: int
    value: bytes = b""
    log: str = ""


def _found(message) -> QueryAnswer:
    if message is None:
        return QueryAnswer(Code.NOT_FOUND, log="not found")
    return QueryAnswer(Code.OK, message.SerializeToString(deterministic=True))


def _participant(state: State, address: bytes) -> QueryAnswer:
    p = state.participant(address)
    if p is None:
        return QueryAnswer(Code.NOT_FOUND, log="no participant with this address")
    unbonding = [e for _, e in state.unbondings() if e.address == address]
    return _found(query_pb2.ParticipantInfo(participant=p, history=state.history(address, p), unbonding=unbonding))


def answer(state: State, path: str) -> QueryAnswer:
    parts = [p for p in path.split("/") if p]
    if not state.has_genesis():
        return QueryAnswer(Code.NOT_FOUND, log="the chain has no committed state yet")
    match parts:
        case [qp.PARAMS]:
            return _found(state.params())
        case [qp.ROUND]:
            return _found(state.round())
        case [qp.ROUND, round_id] if round_id.isdigit():
            return _found(state.round_by_id(int(round_id)))
        case [qp.MODEL]:
            return _found(state.model())
        case [qp.CANDIDATE]:
            candidate = state.candidate()
            return _found(candidate) if candidate else QueryAnswer(Code.NOT_FOUND, log="no candidate under vote")
        case [qp.UPDATES]:
            rnd = state.round()
            if rnd.phase not in (types_pb2.PHASE_VOTE, types_pb2.PHASE_REVEAL_BALLOTS, types_pb2.PHASE_AGGREGATE):
                return QueryAnswer(Code.NOT_FOUND, log="no updates under vote")
            return _found(query_pb2.UpdateList(updates=[state.must_update(rnd.id, a) for a in rnd.submitted]))
        case [qp.PARTICIPANTS]:
            return _found(query_pb2.ParticipantList(participants=list(state.participants())))
        case [qp.PARTICIPANT | qp.ACCOUNT as kind, text]:
            try:
                address = from_bech32(text)
            except ValueError as err:
                return QueryAnswer(Code.BAD_ADDRESS, log=str(err))
            if kind == qp.PARTICIPANT:
                return _participant(state, address)
            account = state.account(address)
            return _found(account) if account else QueryAnswer(Code.NOT_FOUND, log="no account with this address")
    return QueryAnswer(Code.UNKNOWN_PATH, log=f"unknown query path {path!r}; see proto/flchain/v1/query.proto")
