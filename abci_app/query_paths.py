"""The ABCI query paths the app answers and the protobuf type of each answer.

One table for every side: the app's query handler dispatches on these names, and the gateway,
the CLI and the tests build their paths with `path()` and decode answers with `ANSWERS`.
"""

from google.protobuf.message import Message

from flchain.v1 import query_pb2, types_pb2

PARAMS = "params"
ROUND = "round"  # /round is the current round, /round/<id> any round still in state
PARTICIPANT = "participant"  # /participant/<bech32 address>
PARTICIPANTS = "participants"
ACCOUNT = "account"  # /account/<bech32 address>
MODEL = "model"
CANDIDATE = "candidate"
UPDATES = "updates"  # the updates under vote, in Round.submitted order

ANSWERS: dict[str, type[Message]] = {
    PARAMS: types_pb2.Params,
    ROUND: types_pb2.Round,
    PARTICIPANT: query_pb2.ParticipantInfo,
    PARTICIPANTS: query_pb2.ParticipantList,
    ACCOUNT: types_pb2.Account,
    MODEL: types_pb2.GlobalModel,
    CANDIDATE: types_pb2.Candidate,
    UPDATES: query_pb2.UpdateList,
}
BY_ADDRESS = (PARTICIPANT, ACCOUNT)


def path(kind: str, arg: str | int | None = None) -> str:
    """`path("round")` -> "/round", `path("round", 7)` -> "/round/7", `path("account", "flc1...")`."""
    if kind not in ANSWERS:
        raise ValueError(f"unknown query {kind!r}; known: {', '.join(ANSWERS)}")
    return f"/{kind}" if arg is None or arg == "" else f"/{kind}/{arg}"
