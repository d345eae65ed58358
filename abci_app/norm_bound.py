"""A bound on each round's update norms that a minority cannot move: the median of recent norms.

Leave-one-out evidence cannot see a big step when the model is at chance (every update moves the
loss by under 1%), and two 4x sign flips drawn beside one honest update then kill the network in
one round. Bounding every update at (a share of) the median norm of recent rounds' updates makes
such a step no bigger than an honest one: the median stays among the honest norms as long as most
of the recent updates are honest, whatever size the others send. Voters still judge each update as
sent (its proposer answers for all of it); the bound applies when included updates are averaged.

Integers throughout: norms are isqrt of exact sums of squares (rounded up), clipping is integer
scaling. By reference the chain holds no bytes: the aggregators clip (the same functions) and
report the included updates' norms, and the norms of the adopted report enter the history.
"""

from collections.abc import Iterable, Sequence
from math import isqrt

import numpy as np

from abci_app.tensors import squared_norm
from abci_app.units import BPS
from flchain.v1 import types_pb2


def norm(arrays: Sequence[np.ndarray]) -> int:
    """L2 norm of fixed-point tensors, rounded up: scaling by bound / norm then never overshoots."""
    return root_up(squared_norm(arrays))


def root_up(squared: int) -> int:
    """The norm, rounded up, of a squared norm already summed (wire.check_norm returns one)."""
    root = isqrt(squared)
    return root if root * root == squared else root + 1


def bound(history: types_pb2.NormHistory, share_bps: int) -> int:
    """share_bps of the lower median of every norm in the history; 0 (no bound) when the rule is
    off or nothing has been revealed yet."""
    return share_of_median([n for r in history.rounds for n in r.norms], share_bps)


def share_of_median(values: Iterable[int], share_bps: int) -> int:
    """share_bps of the lower median of `values`, at least 1; 0 (no bound) when share_bps is 0 or
    there are no values. A minority of values cannot move it (the sample bound reads it too)."""
    ordered = sorted(values)
    if share_bps == 0 or not ordered:
        return 0
    return max(1, ordered[(len(ordered) - 1) // 2] * share_bps // BPS)


def remember(history: types_pb2.NormHistory, round_id: int, proposed: int, window: int) -> None:
    """Add a revealed update's norm to its round, keeping only the last `window` rounds with any."""
    if not history.rounds or history.rounds[-1].round != round_id:
        history.rounds.add(round=round_id)
    history.rounds[-1].norms.append(proposed)
    del history.rounds[: max(0, len(history.rounds) - window)]


def exceeds(proposed: int, limit: int) -> bool:
    """Whether an update of norm `proposed` is above the bound `limit` (0: no bound)."""
    return limit != 0 and proposed > limit


def clip(arrays: Sequence[np.ndarray], proposed: int, limit: int) -> list[np.ndarray]:
    """Scale tensors whose norm (rounded up) is `proposed` down to norm <= limit (each value rounded
    toward 0, so the result never exceeds the bound). Tensors within the bound come back unchanged.

    int64 cannot overflow: |value| < 2^31 and limit < proposed <= max_update_norm < 2^32."""
    if not exceeds(proposed, limit):
        return [np.asarray(a, dtype=np.int64) for a in arrays]
    return [_scaled_toward_zero(a, limit, proposed) for a in arrays]


def _scaled_toward_zero(a: np.ndarray, limit: int, proposed: int) -> np.ndarray:
    """sign(a) * (|a| * limit // proposed), in one int64 array (aggregators clip models of 100M
    parameters: no temporaries of the array's size beyond it)."""
    out = a.astype(np.int64)  # a copy: the update itself stays as sent
    np.abs(out, out=out)
    out *= limit
    out //= proposed
    np.negative(out, out=out, where=a < 0)
    return out
