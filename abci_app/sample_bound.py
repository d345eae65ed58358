"""A bound on each update's weight in the FedAvg that a minority cannot move: a share of the median
sample count that recent updates claimed.

FedAvg weighs an update by the samples its proposer says it trained on, and nobody can check that
number. A sign flip no bigger than an honest update (under the norm bound) that claims a hundred
times its shard outweighs every honest update of its round whenever the voters let it in: at 30%
such attackers the model collapsed on non-IID data (parameter study, twenty-sixth round). So each
update weighs at most sample_bound_bps of the median claim of the updates revealed in this round
and in the norm_window_rounds rounds before it that had any. The round's own claims count because
they are known before anyone votes: the first round has no history, and one inflated claim among
three cannot move their median. An honest participant with a large shard keeps its weight up to
the bound.

Claims are integers, and the bound is an integer share of one, taken as the norm bound takes its
own (norm_bound.share_of_median): the same on every validator.
"""

from abci_app import norm_bound
from flchain.v1 import types_pb2


def remember(history: types_pb2.SampleHistory, round_id: int, claim: int, window: int) -> None:
    """Add a revealed update's claim to its round, keeping its round and the `window` before it."""
    if not history.rounds or history.rounds[-1].round != round_id:
        history.rounds.add(round=round_id)
    history.rounds[-1].claims.append(claim)
    del history.rounds[: max(0, len(history.rounds) - window - 1)]


def bound(history: types_pb2.SampleHistory, share_bps: int) -> int:
    """share_bps of the lower median of every claim in the history; 0 (no bound) when the rule is
    off or nothing has been revealed."""
    return norm_bound.share_of_median([c for r in history.rounds for c in r.claims], share_bps)


def weight(claim: int, limit: int) -> int:
    """What an update claiming `claim` samples weighs in a FedAvg bounded at `limit` (0: no bound)."""
    return claim if limit == 0 else min(claim, limit)
