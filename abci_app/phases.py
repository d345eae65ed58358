"""The round's phases and the checks every round message makes against them, shared by the rounds'
messages (rounds.py) and the aggregators' reports (aggregate_reports.py)."""

from abci_app.codes import Code, TxError
from flchain.v1 import types_pb2

SELECT, PROPOSE, REVEAL_UPDATES, VOTE, REVEAL_BALLOTS, AGGREGATE, TALLY = (
    types_pb2.PHASE_SELECT,
    types_pb2.PHASE_PROPOSE,
    types_pb2.PHASE_REVEAL_UPDATES,
    types_pb2.PHASE_VOTE,
    types_pb2.PHASE_REVEAL_BALLOTS,
    types_pb2.PHASE_AGGREGATE,
    types_pb2.PHASE_TALLY,
)
# the commit phase each reveal phase follows
_SEALED_IN: dict[int, int] = {REVEAL_UPDATES: PROPOSE, REVEAL_BALLOTS: VOTE}


def open_round(round_id: int, height: int, model_version: int) -> types_pb2.Round:
    return types_pb2.Round(id=round_id, phase=SELECT, opened_height=height, model_version=model_version)


def require_phase(rnd: types_pb2.Round, phase: int, round_id: int) -> None:
    """A message for `phase` of round `round_id` must find the current round there."""
    if rnd.phase != phase:
        early = " (an early reveal: every commitment must be in first)" if _SEALED_IN.get(phase) == rnd.phase else ""
        raise TxError(
            Code.WRONG_PHASE,
            f"round {rnd.id} is in {types_pb2.Phase.Name(rnd.phase)}, not {types_pb2.Phase.Name(phase)}{early}",
        )
    if round_id != rnd.id:
        raise TxError(Code.WRONG_ROUND, f"message is for round {round_id}, the current round is {rnd.id}")


def outcome_name(outcome: int) -> str:
    """OUTCOME_ACCEPTED -> "accepted" (events, reports)."""
    return types_pb2.Outcome.Name(outcome).removeprefix("OUTCOME_").lower()
